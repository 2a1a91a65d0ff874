import assert from "node:assert/strict";
import {
  type Cidr,
  createMatcher,
  formatIp,
  type IpAddress,
  isIpv4Mapped,
  parseCidr,
  parseIp,
  unmapIpv4,
} from "../../lib/security/cidr.ts";

function ip(text: string): IpAddress {
  const parsed = parseIp(text);
  assert.notEqual(parsed, null, `test setup: ${text} should parse`);
  return parsed!;
}

function cidrs(...texts: string[]): Cidr[] {
  return texts.map((text) => {
    const parsed = parseCidr(text);
    assert.notEqual(parsed, null, `test setup: ${text} should parse`);
    return parsed!;
  });
}

/** Words as unsigned numbers, for exact comparisons. */
function words(addr: IpAddress): [4 | 6, number, number, number, number] {
  return [addr.version, addr.w0, addr.w1, addr.w2, addr.w3];
}

Deno.test("parseIp() accepts valid IPv4 addresses", async (t) => {
  const table: [string, number][] = [
    ["0.0.0.0", 0],
    ["255.255.255.255", 0xffffffff],
    ["127.0.0.1", 0x7f000001],
    ["192.30.252.41", 0xc01efc29],
    ["10.0.0.255", 0x0a0000ff],
    ["1.2.3.4", 0x01020304],
    ["100.64.0.0", 0x64400000],
    ["128.0.0.0", 0x80000000],
  ];
  for (const [text, value] of table) {
    await t.step(text, () => {
      assert.deepEqual(words(ip(text)), [4, 0, 0, 0, value]);
    });
  }
});

Deno.test("parseIp() rejects malformed IPv4 addresses", async (t) => {
  const table: [string, string][] = [
    ["leading zero", "01.2.3.4"],
    ["leading zero in the last octet", "1.2.3.04"],
    ["double zero", "1.00.3.4"],
    ["octet over 255", "256.1.1.1"],
    ["octet far over 255", "1.2.3.1000"],
    ["empty part", "1..1.1"],
    ["leading dot", ".1.2.3"],
    ["trailing dot", "1.2.3.4."],
    ["three parts", "1.2.3"],
    ["five parts", "1.2.3.4.5"],
    ["one number", "16909060"],
    ["hex", "0x7f.0.0.1"],
    ["hex octet", "1.2.3.ff"],
    ["octal-looking", "0177.0.0.1"],
    ["leading space", " 1.2.3.4"],
    ["trailing space", "1.2.3.4 "],
    ["inner space", "1.2. 3.4"],
    ["trailing newline", "1.2.3.4\n"],
    ["plus sign", "+1.2.3.4"],
    ["minus sign", "1.2.-3.4"],
    ["port", "1.2.3.4:80"],
    ["CIDR", "1.2.3.4/32"],
    ["brackets", "[1.2.3.4]"],
    ["empty", ""],
    ["dots only", "..."],
    ["full-width digit", "1.2.3.\uff14"],
    ["host name", "localhost"],
    ["very long", "1.2.3.4".padStart(100, "0")],
  ];
  for (const [name, text] of table) {
    await t.step(`${name}: ${JSON.stringify(text)}`, () => {
      assert.equal(parseIp(text), null);
    });
  }
});

Deno.test("parseIp() accepts every textual IPv6 form", async (t) => {
  const table: [string, [number, number, number, number]][] = [
    ["::", [0, 0, 0, 0]],
    ["::1", [0, 0, 0, 1]],
    ["1::", [0x00010000, 0, 0, 0]],
    ["2001:db8::1", [0x20010db8, 0, 0, 1]],
    ["2001:DB8::1", [0x20010db8, 0, 0, 1]],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", [0x20010db8, 0, 0, 1]],
    ["2001:db8:0:0:0:0:0:1", [0x20010db8, 0, 0, 1]],
    ["fe80::1:2", [0xfe800000, 0, 0, 0x00010002]],
    ["1:2:3:4:5:6:7:8", [0x00010002, 0x00030004, 0x00050006, 0x00070008]],
    ["1:2:3:4:5:6:7::", [0x00010002, 0x00030004, 0x00050006, 0x00070000]],
    ["::2:3:4:5:6:7:8", [0x00000002, 0x00030004, 0x00050006, 0x00070008]],
    ["1::8", [0x00010000, 0, 0, 0x00000008]],
    ["1:2::7:8", [0x00010002, 0, 0, 0x00070008]],
    ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", [
      0xffffffff,
      0xffffffff,
      0xffffffff,
      0xffffffff,
    ]],
    ["FfFf::aBcD", [0xffff0000, 0, 0, 0x0000abcd]],
    ["::ffff:1.2.3.4", [0, 0, 0xffff, 0x01020304]],
    ["::FFFF:255.255.255.255", [0, 0, 0xffff, 0xffffffff]],
    ["64:ff9b::1.2.3.4", [0x0064ff9b, 0, 0, 0x01020304]],
    ["::1.2.3.4", [0, 0, 0, 0x01020304]],
    ["1:2:3:4:5:6:1.2.3.4", [0x00010002, 0x00030004, 0x00050006, 0x01020304]],
    ["1::5:6:1.2.3.4", [0x00010000, 0, 0x00050006, 0x01020304]],
    ["::ffff:c000:0201", [0, 0, 0xffff, 0xc0000201]],
    ["2a0a:a440::", [0x2a0aa440, 0, 0, 0]],
    ["ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", [
      0xffffffff,
      0xffffffff,
      0xffffffff,
      0xffffffff,
    ]],
  ];
  for (const [text, expected] of table) {
    await t.step(text, () => {
      assert.deepEqual(words(ip(text)), [6, ...expected]);
    });
  }
});

Deno.test("parseIp() rejects malformed IPv6 addresses", async (t) => {
  const table: [string, string][] = [
    ["five-digit group", "2001:db8::12345"],
    ["five-digit first group", "12345::1"],
    ["too many groups", "1:2:3:4:5:6:7:8:9"],
    ["too few groups", "1:2:3:4:5:6:7"],
    ["eight groups and ::", "1:2:3:4:5:6:7:8::"],
    ["eight groups after ::", "::1:2:3:4:5:6:7:8"],
    ["seven groups around ::", "1:2:3:4::5:6:7:8"],
    ["triple colon", ":::"],
    ["triple colon inside", "1:::2"],
    ["two ::", "1::2::3"],
    ["two :: at the ends", "::1::"],
    ["leading single colon", ":1:2:3:4:5:6:7"],
    ["leading single colon before ::", ":1::"],
    ["trailing single colon", "1:2:3:4:5:6:7:"],
    ["trailing single colon after ::", "1::2:"],
    ["single colon", ":"],
    ["non-hex digit", "2001:db8::g"],
    ["zone id", "fe80::1%eth0"],
    ["brackets", "[::1]"],
    ["bracketed with port", "[::1]:80"],
    ["leading space", " ::1"],
    ["trailing space", "::1 "],
    ["inner space", "2001:db8:: 1"],
    ["CIDR", "2001:db8::/32"],
    ["embedded IPv4 not last", "::1.2.3.4:1"],
    ["embedded IPv4 with too many groups", "1:2:3:4:5:6:7:1.2.3.4"],
    ["embedded IPv4 filling eight groups with ::", "1:2:3:4:5:6::1.2.3.4"],
    ["embedded IPv4 with leading zero", "::ffff:01.2.3.4"],
    ["embedded IPv4 over 255", "::ffff:1.2.3.256"],
    ["embedded IPv4 with three parts", "::ffff:1.2.3"],
    ["embedded IPv4 in hex", "::ffff:a.b.c.d"],
    ["embedded IPv4 too long", "::1234.1.1.1"],
    ["embedded IPv4 after a single colon", ":1.2.3.4"],
    ["embedded IPv4 alone with leading colon", ":ffff:1.2.3.4"],
    ["sign", "+::1"],
    ["hex prefix", "0x1::"],
    ["too long", "0:".repeat(30) + "1"],
  ];
  for (const [name, text] of table) {
    await t.step(`${name}: ${JSON.stringify(text)}`, () => {
      assert.equal(parseIp(text), null);
    });
  }
});

Deno.test("parseIp() returns null for a non-string at run time", () => {
  assert.equal(parseIp(undefined as unknown as string), null);
  assert.equal(parseIp(16909060 as unknown as string), null);
});

Deno.test("formatIp() writes canonical text", async (t) => {
  const table: [string, string][] = [
    ["1.2.3.4", "1.2.3.4"],
    ["255.255.255.255", "255.255.255.255"],
    ["0.0.0.0", "0.0.0.0"],
    ["::", "::"],
    ["::1", "::1"],
    ["1::", "1::"],
    ["2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:db8:0:0:0:1:0:0", "2001:db8::1:0:0"],
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0"],
    ["0:0:1:0:0:0:0:0", "0:0:1::"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ["ABCD:EF01::", "abcd:ef01::"],
    ["::ffff:c000:201", "::ffff:192.0.2.1"],
    ["::FFFF:1.2.3.4", "::ffff:1.2.3.4"],
    ["::1.2.3.4", "::102:304"],
    ["64:ff9b::1.2.3.4", "64:ff9b::102:304"],
    ["::fffe:1.2.3.4", "::fffe:102:304"],
    ["1::ffff:1.2.3.4", "1::ffff:102:304"],
  ];
  for (const [text, expected] of table) {
    await t.step(`${text} → ${expected}`, () => {
      assert.equal(formatIp(ip(text)), expected);
    });
  }
});

Deno.test("formatIp() output parses back to the same address", async (t) => {
  const table = [
    "0.0.0.0",
    "192.30.252.0",
    "::",
    "::1",
    "2606:50c0::",
    "2001:db8:85a3::8a2e:370:7334",
    "fe80::",
    "::ffff:10.0.0.1",
    "1:0:0:2:0:0:0:3",
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
  ];
  for (const text of table) {
    await t.step(text, () => {
      const first = ip(text);
      const again = ip(formatIp(first));
      assert.deepEqual(words(again), words(first));
      assert.equal(formatIp(again), formatIp(first));
    });
  }
});

Deno.test("unmapIpv4() returns the IPv4 inside a mapped address", async (t) => {
  const table: [string, string, 4 | 6][] = [
    ["::ffff:127.0.0.1", "127.0.0.1", 4],
    ["::ffff:c01e:fc29", "192.30.252.41", 4],
    ["127.0.0.1", "127.0.0.1", 4],
    ["::1", "::1", 6],
    ["::127.0.0.1", "::7f00:1", 6],
    ["::fffe:1.2.3.4", "::fffe:102:304", 6],
    ["1::ffff:1.2.3.4", "1::ffff:102:304", 6],
  ];
  for (const [text, expected, version] of table) {
    await t.step(`${text} → ${expected}`, () => {
      const out = unmapIpv4(ip(text));
      assert.equal(out.version, version);
      assert.equal(formatIp(out), expected);
      assert.equal(isIpv4Mapped(out), false);
    });
  }
});

Deno.test("isIpv4Mapped() is true only for ::ffff:0:0/96", () => {
  assert.equal(isIpv4Mapped(ip("::ffff:0.0.0.0")), true);
  assert.equal(isIpv4Mapped(ip("::ffff:255.255.255.255")), true);
  assert.equal(isIpv4Mapped(ip("0.0.0.0")), false);
  assert.equal(isIpv4Mapped(ip("::fffe:1.2.3.4")), false);
  assert.equal(isIpv4Mapped(ip("0:0:1:ffff::")), false);
});

Deno.test("parseCidr() accepts ranges and masks host bits", async (t) => {
  const table: [string, string, 4 | 6, number][] = [
    ["192.30.252.0/22", "192.30.252.0/22", 4, 22],
    ["185.199.108.0/22", "185.199.108.0/22", 4, 22],
    ["140.82.112.0/20", "140.82.112.0/20", 4, 20],
    ["143.55.64.0/20", "143.55.64.0/20", 4, 20],
    ["10.1.2.3/8", "10.0.0.0/8", 4, 8],
    ["192.30.255.255/22", "192.30.252.0/22", 4, 22],
    ["1.2.3.4/0", "0.0.0.0/0", 4, 0],
    ["1.2.3.4/32", "1.2.3.4/32", 4, 32],
    ["1.2.3.4/31", "1.2.3.4/31", 4, 31],
    ["1.2.3.5/31", "1.2.3.4/31", 4, 31],
    ["255.255.255.255/1", "128.0.0.0/1", 4, 1],
    ["1.2.3.4", "1.2.3.4/32", 4, 32],
    ["2a0a:a440::/29", "2a0a:a440::/29", 6, 29],
    ["2606:50c0::/32", "2606:50c0::/32", 6, 32],
    ["2A0A:A447:FFFF::1/29", "2a0a:a440::/29", 6, 29],
    ["2001:db8::1/64", "2001:db8::/64", 6, 64],
    ["2001:db8:1:2:3:4:5:6/96", "2001:db8:1:2:3:4::/96", 6, 96],
    ["2001:db8:1:2:3:4:5:6/127", "2001:db8:1:2:3:4:5:6/127", 6, 127],
    ["2001:db8:1:2:3:4:5:7/127", "2001:db8:1:2:3:4:5:6/127", 6, 127],
    ["2001:db8:ffff:ffff::/33", "2001:db8:8000::/33", 6, 33],
    ["::1/128", "::1/128", 6, 128],
    ["::1", "::1/128", 6, 128],
    ["ffff::1/0", "::/0", 6, 0],
    ["::/0", "::/0", 6, 0],
    ["::ffff:10.1.2.3/104", "::ffff:10.0.0.0/104", 6, 104],
  ];
  for (const [text, canonical, version, prefix] of table) {
    await t.step(`${text} → ${canonical}`, () => {
      const cidr = parseCidr(text);
      assert.notEqual(cidr, null);
      assert.equal(cidr!.text, canonical);
      assert.equal(cidr!.version, version);
      assert.equal(cidr!.prefix, prefix);
      assert.equal(cidr!.network.version, version);
      assert.equal(`${formatIp(cidr!.network)}/${prefix}`, canonical);
    });
  }
});

Deno.test("parseCidr() rejects malformed ranges", async (t) => {
  const table: [string, string][] = [
    ["empty", ""],
    ["empty prefix", "1.2.3.4/"],
    ["slash only", "/24"],
    ["trailing junk", "1.2.3.0/24abc"],
    ["IPv4 prefix over 32", "1.2.3.0/33"],
    ["IPv6 prefix over 128", "2001:db8::/129"],
    ["prefix far too long", "1.2.3.0/0024"],
    ["prefix with leading zero", "1.2.3.0/024"],
    ["prefix 00", "0.0.0.0/00"],
    ["negative prefix", "1.2.3.0/-1"],
    ["plus prefix", "1.2.3.0/+8"],
    ["hex prefix", "1.2.3.0/0x8"],
    ["space before slash", "1.2.3.0 /24"],
    ["space after slash", "1.2.3.0/ 24"],
    ["trailing space", "1.2.3.0/24 "],
    ["leading space", " 1.2.3.0/24"],
    ["two slashes", "1.2.3.0/24/24"],
    ["slash-slash", "1.2.3.0//24"],
    ["bad IPv4", "1.2.3/24"],
    ["IPv4 leading zero", "01.2.3.0/24"],
    ["bad IPv6", "2001:db8:::/32"],
    ["IPv6 with zone", "fe80::%eth0/64"],
    ["bracketed IPv6", "[2001:db8::]/32"],
    ["mask notation", "1.2.3.0/255.255.255.0"],
    ["decimal prefix", "1.2.3.0/24.0"],
    ["host name", "github.com/24"],
  ];
  for (const [name, text] of table) {
    await t.step(`${name}: ${JSON.stringify(text)}`, () => {
      assert.equal(parseCidr(text), null);
    });
  }
});

Deno.test("parseCidr() returns null for a non-string at run time", () => {
  assert.equal(parseCidr(null as unknown as string), null);
});

Deno.test("createMatcher() matches IPv4 and IPv6 ranges", async (t) => {
  const hooks = createMatcher(cidrs(
    "192.30.252.0/22",
    "185.199.108.0/22",
    "140.82.112.0/20",
    "143.55.64.0/20",
    "2a0a:a440::/29",
    "2606:50c0::/32",
  ));
  const table: [string, boolean][] = [
    ["192.30.252.0", true],
    ["192.30.252.41", true],
    ["192.30.255.255", true],
    ["192.30.251.255", false],
    ["192.30.0.1", false],
    ["185.199.111.153", true],
    ["185.199.112.0", false],
    ["140.82.112.0", true],
    ["140.82.127.255", true],
    ["140.82.128.0", false],
    ["143.55.79.1", true],
    ["8.8.8.8", false],
    ["0.0.0.0", false],
    ["255.255.255.255", false],
    ["::ffff:192.30.252.41", true],
    ["::ffff:c01e:fc29", true],
    ["::ffff:8.8.8.8", false],
    ["::192.30.252.41", false],
    ["64:ff9b::192.30.252.41", false],
    ["2a0a:a440::1", true],
    ["2a0a:a447:ffff:ffff:ffff:ffff:ffff:ffff", true],
    ["2a0a:a448::", false],
    ["2a0a:a43f:ffff:ffff:ffff:ffff:ffff:ffff", false],
    ["2606:50c0::", true],
    ["2606:50c0:ffff::1", true],
    ["2606:50c1::", false],
    ["2606:50bf:ffff:ffff:ffff:ffff:ffff:ffff", false],
    ["::1", false],
    ["::", false],
  ];
  for (const [text, expected] of table) {
    await t.step(`${text} → ${expected}`, () => {
      assert.equal(hooks(ip(text)), expected);
    });
  }
});

Deno.test("createMatcher() handles /0, /32 and /128 ranges", async (t) => {
  const table: [string[], string, boolean][] = [
    [["0.0.0.0/0"], "1.2.3.4", true],
    [["0.0.0.0/0"], "255.255.255.255", true],
    [["0.0.0.0/0"], "::ffff:1.2.3.4", true],
    [["0.0.0.0/0"], "::1", false],
    [["0.0.0.0/0"], "2001:db8::1", false],
    [["::/0"], "2001:db8::1", true],
    [["::/0"], "::", true],
    [["::/0"], "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true],
    [["::/0"], "1.2.3.4", false],
    [["::/0"], "::ffff:1.2.3.4", false],
    [["1.2.3.4/32"], "1.2.3.4", true],
    [["1.2.3.4/32"], "1.2.3.5", false],
    [["1.2.3.4/32"], "1.2.3.3", false],
    [["1.2.3.4/32"], "::ffff:1.2.3.4", true],
    [["1.2.3.4"], "1.2.3.4", true],
    [["255.255.255.255/32"], "255.255.255.255", true],
    [["128.0.0.0/1"], "255.0.0.1", true],
    [["128.0.0.0/1"], "127.255.255.255", false],
    [["2001:db8::1/128"], "2001:db8::1", true],
    [["2001:db8::1/128"], "2001:db8::2", false],
    [["2001:db8::1/128"], "2001:db8::", false],
    [["2001:db8::1/128"], "2001:db9::1", false],
    [["2001:db8::1/128"], "2001:db8:0:1::1", false],
    [["2001:db8::1/128"], "2001:db8::1:0:0:1", false],
    [["::1/128"], "::1", true],
    [["::1/128"], "127.0.0.1", false],
    [["8000::/1"], "ffff::", true],
    [["8000::/1"], "7fff::", false],
    [["2001:db8::/64"], "2001:db8::ffff:ffff:ffff:ffff", true],
    [["2001:db8::/64"], "2001:db8:0:1::", false],
    [["2001:db8::/96"], "2001:db8::ffff:ffff", true],
    [["2001:db8::/96"], "2001:db8::1:0:0", false],
  ];
  for (const [ranges, text, expected] of table) {
    await t.step(`${ranges.join(",")} vs ${text} → ${expected}`, () => {
      assert.equal(createMatcher(cidrs(...ranges))(ip(text)), expected);
    });
  }
});

Deno.test("createMatcher() treats mapped IPv6 ranges as IPv4 ranges", async (t) => {
  const table: [string[], string, boolean][] = [
    [["::ffff:10.0.0.0/104"], "10.20.30.40", true],
    [["::ffff:10.0.0.0/104"], "::ffff:10.20.30.40", true],
    [["::ffff:10.0.0.0/104"], "11.0.0.0", false],
    [["::ffff:0:0/96"], "203.0.113.9", true],
    [["::ffff:0:0/96"], "::1", false],
    [["::ffff:1.2.3.4/128"], "1.2.3.4", true],
    [["::ffff:1.2.3.4/128"], "1.2.3.5", false],
    [["::ffff:0:0/95"], "1.2.3.4", false],
    [["::ffff:0:0/95"], "::fffe:1.2.3.4", true],
    [["::/80"], "::ffff:1.2.3.4", false],
    [["::/96"], "1.2.3.4", false],
    [["::/96"], "::1.2.3.4", true],
  ];
  for (const [ranges, text, expected] of table) {
    await t.step(`${ranges.join(",")} vs ${text} → ${expected}`, () => {
      assert.equal(createMatcher(cidrs(...ranges))(ip(text)), expected);
    });
  }
});

Deno.test("createMatcher() with an empty list matches nothing", async (t) => {
  const none = createMatcher([]);
  for (const text of ["0.0.0.0", "1.2.3.4", "::", "::1", "::ffff:1.2.3.4"]) {
    await t.step(text, () => {
      assert.equal(none(ip(text)), false);
    });
  }
});

Deno.test("createMatcher() keeps IPv4 and IPv6 lists apart", () => {
  const v6only = createMatcher(cidrs("2001:db8::/32"));
  const v4only = createMatcher(cidrs("1.2.3.0/24"));
  assert.equal(v6only(ip("1.2.3.4")), false);
  assert.equal(v6only(ip("2001:db8::1")), true);
  assert.equal(v4only(ip("2001:db8::1")), false);
  assert.equal(v4only(ip("::102:304")), false);
  assert.equal(v4only(ip("1.2.3.4")), true);
});

Deno.test("createMatcher() copies the list when compiling", () => {
  const list = cidrs("10.0.0.0/8");
  const matcher = createMatcher(list);
  list.length = 0;
  list.push(...cidrs("192.168.0.0/16"));
  assert.equal(matcher(ip("10.1.2.3")), true);
  assert.equal(matcher(ip("192.168.1.1")), false);
});
