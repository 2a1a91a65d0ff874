import {
  type Cidr,
  createMatcher,
  type IpAddress,
  parseCidr,
  parseIp,
} from "../../lib/security/cidr.ts";

/** ~30 ranges shaped like GitHub's meta (`hooks`, `web`, `api`, `pages`). */
const RANGES = [
  "192.30.252.0/22",
  "185.199.108.0/22",
  "140.82.112.0/20",
  "143.55.64.0/20",
  "20.201.28.151/32",
  "20.205.243.166/32",
  "20.87.245.0/32",
  "4.237.22.38/32",
  "20.207.73.82/32",
  "20.27.177.113/32",
  "20.200.245.247/32",
  "20.175.192.147/32",
  "20.233.83.145/32",
  "20.29.134.23/32",
  "20.199.39.232/32",
  "20.217.135.5/32",
  "4.225.11.198/32",
  "4.208.26.197/32",
  "20.26.156.215/32",
  "20.201.28.148/32",
  "20.205.243.168/32",
  "4.237.22.34/32",
  "2a0a:a440::/29",
  "2606:50c0::/32",
  "2606:50c0:8000::/64",
  "2606:50c0:8001::/64",
  "2606:50c0:8002::/64",
  "2606:50c0:8003::/64",
  "2620:112:3000::/44",
  "2a0a:a440:8000::/33",
];

function must<T>(value: T | null): T {
  if (value === null) throw new TypeError("Cannot bench: fixture is invalid");
  return value;
}

const cidrs: Cidr[] = RANGES.map((text) => must(parseCidr(text)));
const isGitHub = createMatcher(cidrs);

// A miss scans every range: the worst case, and what an attacker costs us.
const MISS_V4 = "203.0.113.7";
const HIT_V4 = "140.82.115.1";
const MISS_V6 = "2001:db8:85a3::8a2e:370:7334";
const MAPPED = "::ffff:203.0.113.7";

const missV4: IpAddress = must(parseIp(MISS_V4));
const hitV4: IpAddress = must(parseIp(HIT_V4));
const missV6: IpAddress = must(parseIp(MISS_V6));
const mapped: IpAddress = must(parseIp(MAPPED));

let sink = 0;

Deno.bench({
  name: "match pre-parsed IPv4 miss vs 30 ranges",
  group: "match",
  baseline: true,
  fn() {
    if (isGitHub(missV4)) sink++;
  },
});

Deno.bench({
  name: "match pre-parsed IPv4 hit vs 30 ranges",
  group: "match",
  fn() {
    if (isGitHub(hitV4)) sink++;
  },
});

Deno.bench({
  name: "match pre-parsed IPv6 miss vs 30 ranges",
  group: "match",
  fn() {
    if (isGitHub(missV6)) sink++;
  },
});

Deno.bench({
  name: "match pre-parsed IPv4-mapped miss vs 30 ranges",
  group: "match",
  fn() {
    if (isGitHub(mapped)) sink++;
  },
});

Deno.bench({
  name: "parse + match IPv4 miss vs 30 ranges",
  group: "match",
  fn() {
    const ip = parseIp(MISS_V4);
    if (ip !== null && isGitHub(ip)) sink++;
  },
});

Deno.bench({
  name: "parse + match IPv6 miss vs 30 ranges",
  group: "match",
  fn() {
    const ip = parseIp(MISS_V6);
    if (ip !== null && isGitHub(ip)) sink++;
  },
});

Deno.bench({
  name: "parseIp IPv4",
  group: "parse",
  baseline: true,
  fn() {
    if (parseIp(MISS_V4) !== null) sink++;
  },
});

Deno.bench({
  name: "parseIp IPv6",
  group: "parse",
  fn() {
    if (parseIp(MISS_V6) !== null) sink++;
  },
});

Deno.bench({
  name: "parseIp IPv4-mapped",
  group: "parse",
  fn() {
    if (parseIp(MAPPED) !== null) sink++;
  },
});

Deno.bench({
  name: "parseIp rejects garbage",
  group: "parse",
  fn() {
    if (parseIp("0x7f.0.0.1") !== null) sink++;
  },
});

Deno.bench({
  name: "createMatcher of 30 ranges",
  group: "compile",
  baseline: true,
  fn() {
    if (createMatcher(cidrs)(missV4)) sink++;
  },
});

Deno.bench({
  name: "parseCidr of 30 ranges",
  group: "compile",
  fn() {
    for (const text of RANGES) if (parseCidr(text) !== null) sink++;
  },
});

globalThis.addEventListener("unload", () => {
  if (sink < 0) console.log(sink);
});
