/**
 * IPv4 and IPv6 addresses and CIDR ranges: strict parsing, canonical
 * formatting and fast matching, with no dependency.
 *
 * Parsing is character by character and accepts only the plain textual forms:
 * dotted-decimal IPv4 without leading zeros, and IPv6 with `::` compression
 * and an optional embedded IPv4 address in the last 32 bits. Anything else
 * (whitespace, signs, hex or octal IPv4, zone ids, brackets, ports) is `null`;
 * untrusted input never throws here. {@link createMatcher} compiles a list of
 * ranges once into mask-and-compare tables.
 *
 * This module knows nothing about HTTP, peers or proxies: see `client_ip.ts`.
 *
 * @module
 */

/**
 * A parsed IP address. The 128 bits are four big-endian unsigned 32-bit words
 * `w0`…`w3`; an IPv4 address lives in `w3` with `w0`…`w2` zero (the
 * `version` tells it apart from the IPv6 address `::a.b.c.d`).
 */
export interface IpAddress {
  /** 4 or 6. */
  readonly version: 4 | 6;
  /** Bits 0–31 (IPv6 only; 0 for IPv4). */
  readonly w0: number;
  /** Bits 32–63 (IPv6 only; 0 for IPv4). */
  readonly w1: number;
  /** Bits 64–95 (IPv6 only; 0 for IPv4). */
  readonly w2: number;
  /** Bits 96–127, or the whole IPv4 address. */
  readonly w3: number;
}

/** A parsed CIDR range, its host bits cleared. */
export interface Cidr {
  /** 4 or 6, the version of {@link Cidr.network}. */
  readonly version: 4 | 6;
  /** Prefix length: 0–32 for IPv4, 0–128 for IPv6. */
  readonly prefix: number;
  /** Canonical text, e.g. `"192.30.252.0/22"` or `"2a0a:a440::/29"`. */
  readonly text: string;
  /** The first address of the range. */
  readonly network: IpAddress;
}

/** A compiled list of ranges: true when the address is in any of them. */
export type Matcher = (ip: IpAddress) => boolean;

/** The longest textual address: `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`. */
const MAX_IP_LENGTH = 45;
const COLON = 58;
const DOT = 46;
const ZERO = 48;
const NINE = 57;

function makeIp(
  version: 4 | 6,
  w0: number,
  w1: number,
  w2: number,
  w3: number,
): IpAddress {
  return { version, w0, w1, w2, w3 };
}

/** Parses dotted-decimal IPv4 in `text[start, end)`; -1 when malformed. */
function parseV4(text: string, start: number, end: number): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i);
    if (code >= ZERO && code <= NINE) {
      if (digits === 1 && octet === 0) return -1; // leading zero
      octet = octet * 10 + (code - ZERO);
      if (octet > 255) return -1;
      digits++;
    } else if (code === DOT) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else {
      return -1;
    }
  }
  if (digits === 0 || dots !== 3) return -1;
  return value * 256 + octet;
}

function hexValue(code: number): number {
  if (code >= ZERO && code <= NINE) return code - ZERO;
  const lower = code | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87; // a-f, A-F
  return -1;
}

/** Parses IPv6 text (no zone, no brackets); null when malformed. */
function parseV6(text: string): IpAddress | null {
  const end = text.length;
  const groups = [0, 0, 0, 0, 0, 0, 0, 0];
  let count = 0;
  let gap = -1; // index in `groups` where `::` stands
  let i = 0;
  if (text.charCodeAt(0) === COLON) {
    if (text.charCodeAt(1) !== COLON) return null; // leading single colon
    gap = 0;
    i = 2;
    if (i === end) return makeIp(6, 0, 0, 0, 0); // "::"
  }
  while (true) {
    const groupStart = i;
    let group = 0;
    while (i < end && i - groupStart < 4) {
      const digit = hexValue(text.charCodeAt(i));
      if (digit < 0) break;
      group = group * 16 + digit;
      i++;
    }
    if (i < end && text.charCodeAt(i) === DOT) {
      // Embedded IPv4: the rest of the text, in the last 32 bits.
      const v4 = parseV4(text, groupStart, end);
      if (v4 < 0) return null;
      groups[count++] = v4 >>> 16;
      groups[count++] = v4 & 0xffff;
      break;
    }
    if (i === groupStart) return null; // empty group: ":::", trailing ":"
    groups[count++] = group;
    if (i === end) break;
    if (text.charCodeAt(i) !== COLON) return null; // 5th digit, junk
    i++;
    if (text.charCodeAt(i) === COLON) {
      if (gap >= 0) return null; // a second "::"
      gap = count;
      i++;
      if (i === end) break;
    } else if (i === end) {
      return null; // trailing single colon
    }
  }
  if (gap < 0) {
    if (count !== 8) return null; // too few or too many groups
  } else {
    if (count > 7) return null; // "::" stands for at least one group
    const shift = 8 - count;
    for (let k = count - 1; k >= gap; k--) groups[k + shift] = groups[k]!;
    for (let k = gap; k < gap + shift; k++) groups[k] = 0;
  }
  return makeIp(
    6,
    groups[0]! * 0x10000 + groups[1]!,
    groups[2]! * 0x10000 + groups[3]!,
    groups[4]! * 0x10000 + groups[5]!,
    groups[6]! * 0x10000 + groups[7]!,
  );
}

/**
 * Parses an IPv4 or IPv6 address strictly, returning `null` for anything that
 * is not exactly one address (leading zeros, hex, whitespace, zone id,
 * brackets, port).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatIp, parseIp } from "./cidr.ts";
 *
 * const ip = parseIp("2001:DB8:0:0::1");
 * assert.equal(ip?.version, 6);
 * assert.equal(formatIp(ip!), "2001:db8::1");
 * assert.equal(parseIp("01.2.3.4"), null);
 * assert.equal(parseIp("0x7f.0.0.1"), null);
 * ```
 */
export function parseIp(text: string): IpAddress | null {
  if (typeof text !== "string") return null;
  const length = text.length;
  if (length === 0 || length > MAX_IP_LENGTH) return null;
  if (text.indexOf(":") >= 0) return parseV6(text);
  const v4 = parseV4(text, 0, length);
  return v4 < 0 ? null : makeIp(4, 0, 0, 0, v4);
}

/**
 * True when `ip` is an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isIpv4Mapped, parseIp } from "./cidr.ts";
 *
 * assert.equal(isIpv4Mapped(parseIp("::ffff:10.0.0.1")!), true);
 * assert.equal(isIpv4Mapped(parseIp("10.0.0.1")!), false);
 * ```
 */
export function isIpv4Mapped(ip: IpAddress): boolean {
  return ip.version === 6 && ip.w0 === 0 && ip.w1 === 0 && ip.w2 === 0xffff;
}

/**
 * Returns the IPv4 address inside an IPv4-mapped IPv6 address
 * (`::ffff:a.b.c.d`), and any other address unchanged.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatIp, parseIp, unmapIpv4 } from "./cidr.ts";
 *
 * assert.equal(formatIp(unmapIpv4(parseIp("::ffff:127.0.0.1")!)), "127.0.0.1");
 * assert.equal(formatIp(unmapIpv4(parseIp("::1")!)), "::1");
 * ```
 */
export function unmapIpv4(ip: IpAddress): IpAddress {
  return isIpv4Mapped(ip) ? makeIp(4, 0, 0, 0, ip.w3) : ip;
}

function formatV4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 0xff}.${(value >>> 8) & 0xff}.${
    value & 0xff
  }`;
}

/**
 * Formats an address canonically: dotted decimal for IPv4, RFC 5952 for IPv6
 * (lowercase, no leading zeros, the longest run of two or more zero groups
 * as `::`, and `::ffff:a.b.c.d` for IPv4-mapped addresses).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatIp, parseIp } from "./cidr.ts";
 *
 * assert.equal(formatIp(parseIp("2001:0DB8:0000:0000:0001:0000:0000:0001")!), "2001:db8::1:0:0:1");
 * assert.equal(formatIp(parseIp("::FFFF:c000:0201")!), "::ffff:192.0.2.1");
 * ```
 */
export function formatIp(ip: IpAddress): string {
  if (ip.version === 4) return formatV4(ip.w3);
  if (isIpv4Mapped(ip)) return `::ffff:${formatV4(ip.w3)}`;
  const words = [ip.w0, ip.w1, ip.w2, ip.w3];
  const groups: number[] = [];
  for (const word of words) groups.push(word >>> 16, word & 0xffff);
  let bestStart = -1;
  let bestLength = 1; // a single zero group is never compressed
  for (let k = 0; k < 8;) {
    if (groups[k] !== 0) {
      k++;
      continue;
    }
    let run = k;
    while (run < 8 && groups[run] === 0) run++;
    if (run - k > bestLength) {
      bestStart = k;
      bestLength = run - k;
    }
    k = run;
  }
  const hex = (from: number, to: number) =>
    groups.slice(from, to).map((g) => g.toString(16)).join(":");
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

/** The 32-bit mask of word `index` (0–3) for a prefix over `bits` bits. */
function wordMask(prefix: number, index: number): number {
  const bits = Math.min(32, Math.max(0, prefix - 32 * index));
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/**
 * Parses `address/prefix` (or a bare address, as `/32` or `/128`), returning
 * `null` when malformed. Host bits below the prefix are accepted and cleared:
 * `"10.1.2.3/8"` is the range `10.0.0.0/8`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCidr } from "./cidr.ts";
 *
 * assert.equal(parseCidr("2A0A:A440:0::/29")?.text, "2a0a:a440::/29");
 * assert.equal(parseCidr("10.1.2.3/8")?.text, "10.0.0.0/8");
 * assert.equal(parseCidr("192.30.252.7")?.prefix, 32);
 * assert.equal(parseCidr("1.2.3.0/24abc"), null);
 * ```
 */
export function parseCidr(text: string): Cidr | null {
  if (typeof text !== "string") return null;
  const slash = text.indexOf("/");
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (ip === null) return null;
  const max = ip.version === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const digits = text.length - slash - 1;
    if (digits < 1 || digits > 3) return null;
    if (digits > 1 && text.charCodeAt(slash + 1) === ZERO) return null;
    prefix = 0;
    for (let i = slash + 1; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code < ZERO || code > NINE) return null; // includes a second "/"
      prefix = prefix * 10 + (code - ZERO);
    }
    if (prefix > max) return null;
  }
  const offset = ip.version === 4 ? 96 : 0;
  const network = makeIp(
    ip.version,
    (ip.w0 & wordMask(prefix + offset, 0)) >>> 0,
    (ip.w1 & wordMask(prefix + offset, 1)) >>> 0,
    (ip.w2 & wordMask(prefix + offset, 2)) >>> 0,
    (ip.w3 & wordMask(prefix + offset, 3)) >>> 0,
  );
  return {
    version: ip.version,
    prefix,
    text: `${formatIp(network)}/${prefix}`,
    network,
  };
}

/**
 * The family and prefix length a range has for matching (see
 * {@link createMatcher}): an IPv4-mapped IPv6 range (`::ffff:0.0.0.0/96` and
 * narrower) is the IPv4 range of its last 32 bits; any other range is itself.
 * Width limits are checked against this, so that `::ffff:0.0.0.0/96` is held
 * to the limit of `0.0.0.0/0`.
 *
 * @example
 * ```ts
 * import { effectivePrefix, parseCidr } from "./cidr.ts";
 * effectivePrefix(parseCidr("::ffff:10.0.0.0/104")!); // { version: 4, prefix: 8 }
 * effectivePrefix(parseCidr("fd00::/8")!); // { version: 6, prefix: 8 }
 * ```
 */
export function effectivePrefix(
  cidr: Cidr,
): { version: 4 | 6; prefix: number } {
  if (cidr.version === 6 && cidr.prefix >= 96 && isIpv4Mapped(cidr.network)) {
    return { version: 4, prefix: cidr.prefix - 96 };
  }
  return { version: cidr.version, prefix: cidr.prefix };
}

/**
 * Compiles `cidrs` once into a function telling whether an address is in any
 * of them.
 *
 * Addresses are compared as {@link unmapIpv4} sees them: an IPv4-mapped IPv6
 * address matches IPv4 ranges, and so do IPv6 ranges written in the mapped
 * form (`::ffff:10.0.0.0/104`, prefix 96 or more). Other IPv6 ranges (even
 * `::/0`) never match an IPv4 address, and IPv4 ranges never match a native
 * IPv6 address. An empty list matches nothing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createMatcher, parseCidr, parseIp } from "./cidr.ts";
 *
 * const hooks = ["192.30.252.0/22", "2a0a:a440::/29"].map((c) => parseCidr(c)!);
 * const isGitHub = createMatcher(hooks);
 * assert.equal(isGitHub(parseIp("192.30.252.41")!), true);
 * assert.equal(isGitHub(parseIp("::ffff:192.30.252.41")!), true);
 * assert.equal(isGitHub(parseIp("2a0a:a440::1")!), true);
 * assert.equal(isGitHub(parseIp("8.8.8.8")!), false);
 * ```
 */
export function createMatcher(cidrs: readonly Cidr[]): Matcher {
  const v4: number[] = []; // pairs: mask, network
  const v6: number[] = []; // octets: mask0, network0, … mask3, network3
  for (const cidr of cidrs) {
    const net = cidr.network;
    if (cidr.version === 4) {
      v4.push(wordMask(cidr.prefix, 0) | 0, net.w3 | 0);
    } else if (cidr.prefix >= 96 && isIpv4Mapped(net)) {
      v4.push(wordMask(cidr.prefix - 96, 0) | 0, net.w3 | 0);
    } else {
      const words = [net.w0, net.w1, net.w2, net.w3];
      for (let k = 0; k < 4; k++) {
        v6.push(wordMask(cidr.prefix, k) | 0, words[k]! | 0);
      }
    }
  }
  const table4 = Int32Array.from(v4);
  const table6 = Int32Array.from(v6);
  const n4 = table4.length;
  const n6 = table6.length;
  const match4 = (value: number): boolean => {
    for (let i = 0; i < n4; i += 2) {
      if ((value & table4[i]!) === table4[i + 1]!) return true;
    }
    return false;
  };
  return (ip: IpAddress): boolean => {
    if (ip.version === 4) return match4(ip.w3);
    const w0 = ip.w0, w1 = ip.w1, w2 = ip.w2, w3 = ip.w3;
    if (w0 === 0 && w1 === 0 && w2 === 0xffff) return match4(w3);
    for (let i = 0; i < n6; i += 8) {
      if (
        (w0 & table6[i]!) === table6[i + 1]! &&
        (w1 & table6[i + 2]!) === table6[i + 3]! &&
        (w2 & table6[i + 4]!) === table6[i + 5]! &&
        (w3 & table6[i + 6]!) === table6[i + 7]!
      ) return true;
    }
    return false;
  };
}
