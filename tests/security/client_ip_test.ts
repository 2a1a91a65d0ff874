import assert from "node:assert/strict";
import {
  createMatcher,
  formatIp,
  type Matcher,
  parseCidr,
} from "../../lib/security/cidr.ts";
import {
  parseForwardedHop,
  parsePeerAddress,
  resolveClientIp,
} from "../../lib/security/client_ip.ts";

function matcher(...texts: string[]): Matcher {
  return createMatcher(texts.map((text) => {
    const cidr = parseCidr(text);
    assert.notEqual(cidr, null, `test setup: ${text} should parse`);
    return cidr!;
  }));
}

/** The resolved address as text, or null. */
function resolve(
  peer: string,
  forwardedFor: string | null,
  trusted: Matcher | null,
): string | null {
  const ip = resolveClientIp(peer, forwardedFor, trusted);
  return ip === null ? null : formatIp(ip);
}

const GITHUB = "192.30.252.41";
const PROXIES = matcher("10.0.0.0/8", "fd00::/8", "127.0.0.1");

Deno.test("parsePeerAddress() reads what Deno.serve reports", async (t) => {
  const table: [string, string, 4 | 6][] = [
    ["127.0.0.1", "127.0.0.1", 4],
    ["192.30.252.41", "192.30.252.41", 4],
    ["::1", "::1", 6],
    ["::ffff:127.0.0.1", "127.0.0.1", 4],
    ["::ffff:c01e:fc29", "192.30.252.41", 4],
    ["[::1]", "::1", 6],
    ["[::ffff:10.0.0.1]", "10.0.0.1", 4],
    ["fe80::1%eth0", "fe80::1", 6],
    ["fe80::1%25", "fe80::1", 6],
    ["[fe80::1%eth0]", "fe80::1", 6],
    ["2A0A:A440::1", "2a0a:a440::1", 6],
  ];
  for (const [hostname, expected, version] of table) {
    await t.step(`${hostname} → ${expected}`, () => {
      const ip = parsePeerAddress(hostname);
      assert.notEqual(ip, null);
      assert.equal(ip!.version, version);
      assert.equal(formatIp(ip!), expected);
    });
  }
});

Deno.test("parsePeerAddress() rejects malformed peers", async (t) => {
  const table = [
    "",
    "localhost",
    "1.2.3.4:80",
    "[::1]:80",
    "[::1",
    "::1]",
    "fe80::1%",
    "1.2.3.4%eth0",
    " 127.0.0.1",
    "127.0.0.1 ",
    "01.2.3.4",
    "unknown",
  ];
  for (const hostname of table) {
    await t.step(JSON.stringify(hostname), () => {
      assert.equal(parsePeerAddress(hostname), null);
    });
  }
});

Deno.test("parsePeerAddress() returns null for a non-string at run time", () => {
  assert.equal(parsePeerAddress(undefined as unknown as string), null);
});

Deno.test("parseForwardedHop() accepts addresses, brackets and ports", async (t) => {
  const table: [string, string][] = [
    ["1.2.3.4", "1.2.3.4"],
    [" 1.2.3.4", "1.2.3.4"],
    ["\t1.2.3.4 \t", "1.2.3.4"],
    ["1.2.3.4:80", "1.2.3.4"],
    ["1.2.3.4:65535", "1.2.3.4"],
    ["2001:db8::1", "2001:db8::1"],
    ["[2001:db8::1]", "2001:db8::1"],
    ["[2001:db8::1]:443", "2001:db8::1"],
    ["::ffff:1.2.3.4", "1.2.3.4"],
    ["[::ffff:1.2.3.4]:1", "1.2.3.4"],
    ["::1:80", "::1:80"],
  ];
  for (const [element, expected] of table) {
    await t.step(`${JSON.stringify(element)} → ${expected}`, () => {
      const ip = parseForwardedHop(element);
      assert.notEqual(ip, null);
      assert.equal(formatIp(ip!), expected);
    });
  }
});

Deno.test("parseForwardedHop() rejects malformed hops", async (t) => {
  const table: [string, string][] = [
    ["empty", ""],
    ["spaces only", "   "],
    ["unknown", "unknown"],
    ["obfuscated identifier", "_hidden"],
    ["host name", "proxy.example"],
    ["port zero", "1.2.3.4:0"],
    ["port over 65535", "1.2.3.4:65536"],
    ["port with leading zero", "1.2.3.4:080"],
    ["empty port", "1.2.3.4:"],
    ["non-numeric port", "1.2.3.4:http"],
    ["bracketed IPv4", "[1.2.3.4]"],
    ["bracketed IPv4 with port", "[1.2.3.4]:80"],
    ["unclosed bracket", "[2001:db8::1"],
    ["junk after bracket", "[2001:db8::1]x"],
    ["empty port after bracket", "[2001:db8::1]:"],
    ["bad port after bracket", "[2001:db8::1]:99999"],
    ["zone id", "fe80::1%eth0"],
    ["bracketed zone id", "[fe80::1%eth0]"],
    ["bad IPv4", "1.2.3.256"],
    ["leading zero", "01.2.3.4"],
    ["bad IPv6", "2001:::1"],
    ["port only", ":80"],
    ["two addresses without a comma", "1.2.3.4 5.6.7.8"],
    ["quoted", '"1.2.3.4"'],
    ["Forwarded syntax", "for=1.2.3.4"],
  ];
  for (const [name, element] of table) {
    await t.step(`${name}: ${JSON.stringify(element)}`, () => {
      assert.equal(parseForwardedHop(element), null);
    });
  }
});

Deno.test("parseForwardedHop() returns null for a non-string at run time", () => {
  assert.equal(parseForwardedHop(null as unknown as string), null);
});

Deno.test("resolveClientIp() uses the peer when no proxy is trusted", async (t) => {
  const table: [string, string | null, Matcher | null, string | null][] = [
    ["203.0.113.9", null, null, "203.0.113.9"],
    ["203.0.113.9", GITHUB, null, "203.0.113.9"],
    ["10.0.0.1", GITHUB, null, "10.0.0.1"],
    ["10.0.0.1", GITHUB, matcher(), "10.0.0.1"],
    ["::ffff:10.0.0.1", GITHUB, null, "10.0.0.1"],
    ["2001:db8::1", GITHUB, null, "2001:db8::1"],
    ["garbage", GITHUB, null, null],
    ["", null, null, null],
  ];
  for (const [peer, xff, trusted, expected] of table) {
    await t.step(`${peer} with ${JSON.stringify(xff)} → ${expected}`, () => {
      assert.equal(resolve(peer, xff, trusted), expected);
    });
  }
});

Deno.test("resolveClientIp() walks X-Forwarded-For from a trusted peer", async (t) => {
  const table: [string, string, string | null, string | null][] = [
    ["single hop", "10.0.0.1", GITHUB, GITHUB],
    ["no header: the peer", "10.0.0.1", null, "10.0.0.1"],
    ["skips trusted hops", "10.0.0.1", `${GITHUB}, 10.0.0.2, 10.0.0.3`, GITHUB],
    [
      "every hop trusted: the leftmost",
      "10.0.0.1",
      "10.0.0.9, 10.0.0.8",
      "10.0.0.9",
    ],
    ["one trusted hop", "10.0.0.1", "10.0.0.9", "10.0.0.9"],
    ["no spaces", "10.0.0.1", `${GITHUB},10.0.0.2`, GITHUB],
    ["tabs and spaces", "10.0.0.1", `\t${GITHUB} ,\t10.0.0.2 `, GITHUB],
    ["joined headers", "10.0.0.1", `1.1.1.1, ${GITHUB}, 10.0.0.2`, GITHUB],
    ["mapped peer", "::ffff:10.0.0.1", GITHUB, GITHUB],
    ["bracketed mapped peer", "[::ffff:10.0.0.1]", GITHUB, GITHUB],
    ["IPv6 peer", "fd00::1", GITHUB, GITHUB],
    ["IPv6 peer with zone", "fd00::1%eth0", GITHUB, GITHUB],
    ["IPv6 client", "10.0.0.1", "2a0a:a440::1", "2a0a:a440::1"],
    ["bracketed IPv6 client", "10.0.0.1", "[2a0a:a440::1]:443", "2a0a:a440::1"],
    ["mapped client is unmapped", "10.0.0.1", `::ffff:${GITHUB}`, GITHUB],
    [
      "mapped trusted hop skipped",
      "10.0.0.1",
      `${GITHUB}, ::ffff:10.0.0.5`,
      GITHUB,
    ],
    ["IPv4 hop with port", "10.0.0.1", `${GITHUB}:51234`, GITHUB],
    ["trusted single address", "127.0.0.1", GITHUB, GITHUB],
    [
      "all trusted, mapped leftmost",
      "10.0.0.1",
      "::ffff:10.0.0.7, 10.0.0.8",
      "10.0.0.7",
    ],
  ];
  for (const [name, peer, xff, expected] of table) {
    await t.step(name, () => {
      assert.equal(resolve(peer, xff, PROXIES), expected);
    });
  }
});

Deno.test("resolveClientIp() resists spoofing", async (t) => {
  const table: [string, string, string | null, string | null][] = [
    ["untrusted peer claiming GitHub", "203.0.113.9", GITHUB, "203.0.113.9"],
    [
      "untrusted IPv6 peer claiming GitHub",
      "2001:db8::bad",
      GITHUB,
      "2001:db8::bad",
    ],
    [
      "untrusted mapped peer claiming GitHub",
      "::ffff:203.0.113.9",
      GITHUB,
      "203.0.113.9",
    ],
    [
      "untrusted peer with garbage header",
      "203.0.113.9",
      "garbage,,",
      "203.0.113.9",
    ],
    [
      "fake GitHub hop prepended by the client",
      "10.0.0.1",
      `${GITHUB}, 203.0.113.9`,
      "203.0.113.9",
    ],
    [
      "fake hops behind two proxies",
      "10.0.0.1",
      `${GITHUB}, 140.82.112.1, 203.0.113.9, 10.0.0.2`,
      "203.0.113.9",
    ],
    [
      "fake trusted hop prepended: the real client still wins",
      "10.0.0.1",
      `10.0.0.99, 203.0.113.9`,
      "203.0.113.9",
    ],
    [
      "garbage left of the client is never read",
      "10.0.0.1",
      `unknown, not-an-ip, , 203.0.113.9, 10.0.0.2`,
      "203.0.113.9",
    ],
    ["peer that is not an address", "evil", GITHUB, null],
  ];
  for (const [name, peer, xff, expected] of table) {
    await t.step(name, () => {
      assert.equal(resolve(peer, xff, PROXIES), expected);
    });
  }
});

Deno.test("resolveClientIp() refuses a malformed walked hop", async (t) => {
  const table: [string, string][] = [
    ["empty header", ""],
    ["blank header", "  "],
    ["unknown", "unknown"],
    ["garbage", "garbage"],
    ["empty element at the right", `${GITHUB}, `],
    ["empty element between trusted hops", `${GITHUB}, , 10.0.0.2`],
    ["trailing comma", `${GITHUB},`],
    ["host name", "proxy.example, 10.0.0.2"],
    ["unknown behind a trusted hop", "unknown, 10.0.0.2"],
    ["bad port", `${GITHUB}:0`],
    ["bad IPv4", "1.2.3.256"],
    ["bracketed IPv4", `[${GITHUB}]`],
    ["zone id", "fe80::1%eth0"],
    ["all trusted, then garbage at the left", "junk, 10.0.0.9, 10.0.0.8"],
  ];
  for (const [name, xff] of table) {
    await t.step(`${name}: ${JSON.stringify(xff)}`, () => {
      assert.equal(resolve("10.0.0.1", xff, PROXIES), null);
    });
  }
});
