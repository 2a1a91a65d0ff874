/**
 * Who is the client: the TCP peer, or, only when the peer is a trusted proxy,
 * the rightmost untrusted hop of `X-Forwarded-For`.
 *
 * An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack listener
 * reports for IPv4 peers) is always returned as the IPv4 address. A peer that
 * is not trusted has its `X-Forwarded-For` ignored entirely, so a client
 * cannot claim to be GitHub by sending the header itself.
 *
 * Accepted `X-Forwarded-For` hops, each trimmed of spaces and tabs: a plain
 * IPv4 or IPv6 address, an IPv6 address in brackets (`[2001:db8::1]`), and
 * an IPv4 or bracketed IPv6 address with a port (`192.0.2.1:8080`,
 * `[2001:db8::1]:8080`; the port is dropped). A bare IPv6 address is never
 * read as having a port. Anything else in the walked part of the header (an
 * empty element or an empty header, `unknown`, a zone id, a host name, an
 * IPv4 address in brackets) makes the result `null`. Hops to the left of the
 * client are never looked at: they are the client's own claim.
 *
 * This module does not read headers or decide statuses; `http/webhook.ts` does.
 *
 * @module
 */

import { type IpAddress, type Matcher, parseIp, unmapIpv4 } from "./cidr.ts";

/**
 * Parses the peer host name that `Deno.serve` reports (`info.remoteAddr
 * .hostname`), tolerating brackets and an IPv6 zone id, and returns the
 * address unmapped to IPv4 when it is IPv4-mapped; `null` when malformed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatIp } from "./cidr.ts";
 * import { parsePeerAddress } from "./client_ip.ts";
 *
 * assert.equal(formatIp(parsePeerAddress("::ffff:127.0.0.1")!), "127.0.0.1");
 * assert.equal(formatIp(parsePeerAddress("[fe80::1%eth0]")!), "fe80::1");
 * assert.equal(parsePeerAddress("localhost"), null);
 * ```
 */
export function parsePeerAddress(hostname: string): IpAddress | null {
  if (typeof hostname !== "string") return null;
  let text = hostname;
  if (text.startsWith("[")) {
    if (!text.endsWith("]")) return null;
    text = text.slice(1, -1);
  }
  const percent = text.indexOf("%");
  if (percent >= 0) {
    if (percent === text.length - 1 || text.indexOf(":") < 0) return null;
    text = text.slice(0, percent);
  }
  const ip = parseIp(text);
  return ip === null ? null : unmapIpv4(ip);
}

/** `1`–`65535` in decimal, without leading zeros. */
function isPort(text: string): boolean {
  if (!/^[1-9][0-9]{0,4}$/.test(text)) return false;
  return Number(text) <= 65535;
}

/**
 * Parses one `X-Forwarded-For` element (see the module notes for the accepted
 * forms), unmapped to IPv4; `null` when malformed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatIp } from "./cidr.ts";
 * import { parseForwardedHop } from "./client_ip.ts";
 *
 * assert.equal(formatIp(parseForwardedHop(" [2001:db8::1]:443")!), "2001:db8::1");
 * assert.equal(formatIp(parseForwardedHop("203.0.113.9:51234")!), "203.0.113.9");
 * assert.equal(parseForwardedHop("unknown"), null);
 * ```
 */
export function parseForwardedHop(element: string): IpAddress | null {
  if (typeof element !== "string") return null;
  let text = element.replace(/^[ \t]+|[ \t]+$/g, "");
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) return null;
    const rest = text.slice(close + 1);
    if (rest !== "" && !(rest.startsWith(":") && isPort(rest.slice(1)))) {
      return null;
    }
    const ip = parseIp(text.slice(1, close));
    return ip === null || ip.version !== 6 ? null : unmapIpv4(ip);
  }
  const colon = text.indexOf(":");
  if (colon >= 0 && text.indexOf(":", colon + 1) < 0) {
    // Exactly one colon: only `a.b.c.d:port` has that form.
    if (!isPort(text.slice(colon + 1))) return null;
    text = text.slice(0, colon);
    const ip = parseIp(text);
    return ip === null || ip.version !== 4 ? null : ip;
  }
  const ip = parseIp(text);
  return ip === null ? null : unmapIpv4(ip);
}

/**
 * Resolves the client address from the TCP peer, the `X-Forwarded-For` value
 * (several headers joined with `", "`) and the trusted proxies; `null` when
 * the peer or a walked hop is malformed.
 *
 * The header is used only when `trustedProxies` is given and matches the
 * peer. It is then walked from the right, skipping trusted proxies: the first
 * untrusted hop is the client; if every hop is trusted, the leftmost is. A
 * trusted peer without the header is itself the client.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createMatcher, formatIp, parseCidr } from "./cidr.ts";
 * import { resolveClientIp } from "./client_ip.ts";
 *
 * const proxies = createMatcher([parseCidr("10.0.0.0/8")!]);
 * const client = resolveClientIp("10.0.0.2", "1.1.1.1, 192.30.252.41, 10.0.0.1", proxies);
 * assert.equal(formatIp(client!), "192.30.252.41");
 * // An untrusted peer's header is ignored.
 * const direct = resolveClientIp("203.0.113.9", "192.30.252.41", proxies);
 * assert.equal(formatIp(direct!), "203.0.113.9");
 * ```
 */
export function resolveClientIp(
  peer: string,
  forwardedFor: string | null,
  trustedProxies: Matcher | null,
): IpAddress | null {
  const peerIp = parsePeerAddress(peer);
  if (peerIp === null) return null;
  if (trustedProxies === null || !trustedProxies(peerIp)) return peerIp;
  if (forwardedFor === null || forwardedFor === undefined) return peerIp;
  const hops = forwardedFor.split(",");
  let hop: IpAddress | null = null;
  for (let i = hops.length - 1; i >= 0; i--) {
    hop = parseForwardedHop(hops[i]!);
    if (hop === null || !trustedProxies(hop)) return hop;
  }
  return hop;
}
