/**
 * Reading a GitHub App's private key: the PEM text GitHub hands out (PKCS#1,
 * `BEGIN RSA PRIVATE KEY`) or PKCS#8 (`BEGIN PRIVATE KEY`), with newlines
 * written as `\n` (as env files hold it) or as base64 of the whole PEM, made
 * into PKCS#8 DER and imported through WebCrypto as an RS256 signing key.
 *
 * PKCS#1 is wrapped into PKCS#8 by a few lines of DER here; nothing else of
 * ASN.1 is parsed (WebCrypto judges the key itself). It does not read files
 * or the environment, and no error message holds any part of the key.
 *
 * @module
 */

/** What {@link parseAppKey} makes of a key's text. */
export type ParsedAppKey =
  | { ok: true; pkcs8: Uint8Array<ArrayBuffer> }
  | { ok: false; error: string };

/** What {@link importAppKey} makes of a key's text. */
export type ImportedAppKey =
  | { ok: true; key: CryptoKey }
  | { ok: false; error: string };

/** The WebCrypto algorithm of GitHub App JWTs (RS256). */
export const APP_KEY_ALGORITHM: RsaHashedImportParams = {
  name: "RSASSA-PKCS1-v1_5",
  hash: "SHA-256",
};

/** AlgorithmIdentifier { rsaEncryption (1.2.840.113549.1.1.1), NULL }. */
const RSA_ALGORITHM_ID = Uint8Array.of(
  0x30,
  0x0d,
  0x06,
  0x09,
  0x2a,
  0x86,
  0x48,
  0x86,
  0xf7,
  0x0d,
  0x01,
  0x01,
  0x01,
  0x05,
  0x00,
);
const PEM = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * The PKCS#8 DER of an App key's text, or why it is not one. Accepts PKCS#1
 * and PKCS#8 PEM, `\n` written for newlines, and base64 of the whole PEM.
 *
 * @example
 * ```ts
 * import { parseAppKey } from "./app_key.ts";
 * parseAppKey("").ok; // false
 * parseAppKey("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----");
 * // { ok: false, error: "the key is an EC key (BEGIN EC PRIVATE KEY): a GitHub App key is RSA" }
 * ```
 */
export function parseAppKey(text: string): ParsedAppKey {
  const pem = pemText(text);
  if (typeof pem !== "string") return pem;
  const match = PEM.exec(pem);
  if (!match) {
    return fail(
      "the key is not PEM text: it needs its -----BEGIN …----- and -----END …----- lines",
    );
  }
  const label = match[1]!;
  const body = match[2]!;
  if (label === "ENCRYPTED PRIVATE KEY" || /Proc-Type:.*ENCRYPTED/.test(body)) {
    return fail(
      "the key is encrypted with a passphrase: use the key GitHub handed out, unencrypted",
    );
  }
  if (label === "EC PRIVATE KEY") {
    return fail(
      "the key is an EC key (BEGIN EC PRIVATE KEY): a GitHub App key is RSA",
    );
  }
  if (label !== "RSA PRIVATE KEY" && label !== "PRIVATE KEY") {
    return fail(
      `the PEM holds a ${label}, not a private key (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)`,
    );
  }
  const der = decodeBase64(body.replace(/\s+/g, ""));
  if (der === null || der.length === 0) {
    return fail("the key's PEM body is not base64");
  }
  if (!isWholeSequence(der)) {
    return fail("the key is cut off or damaged (its DER length is wrong)");
  }
  return {
    ok: true,
    pkcs8: label === "PRIVATE KEY" ? der : wrapPkcs1(der),
  };
}

/**
 * Imports an App key's text as a non-extractable RS256 signing key, or says
 * why it cannot.
 *
 * @example
 * ```ts
 * import { importAppKey } from "./app_key.ts";
 * (await importAppKey("not a key")).ok; // false
 * ```
 */
export async function importAppKey(text: string): Promise<ImportedAppKey> {
  const parsed = parseAppKey(text);
  if (!parsed.ok) return parsed;
  try {
    const key = await crypto.subtle.importKey(
      "pkcs8",
      parsed.pkcs8,
      APP_KEY_ALGORITHM,
      false,
      ["sign"],
    );
    return { ok: true, key };
  } catch {
    // WebCrypto's own message is not shown: it could quote the input.
    return fail(
      "the key is not an RSA private key WebCrypto can use (another kind of key, or damaged)",
    );
  }
}

/**
 * PKCS#1 `RSAPrivateKey` DER wrapped as PKCS#8 `PrivateKeyInfo`:
 * SEQUENCE { INTEGER 0, rsaEncryption, OCTET STRING { pkcs1 } }.
 *
 * @example
 * ```ts
 * import { wrapPkcs1 } from "./app_key.ts";
 * wrapPkcs1(Uint8Array.of(0x30, 0x00)).length; // 26
 * ```
 */
export function wrapPkcs1(pkcs1: Uint8Array): Uint8Array<ArrayBuffer> {
  const version = Uint8Array.of(0x02, 0x01, 0x00);
  const octets = derElement(0x04, [pkcs1]);
  return derElement(0x30, [version, RSA_ALGORITHM_ID, octets]);
}

/**
 * The length octets of DER: short form below 128, else long form.
 *
 * @example
 * ```ts
 * import { derLength } from "./app_key.ts";
 * derLength(0x7f); // Uint8Array [ 127 ]
 * derLength(0x1234); // Uint8Array [ 130, 18, 52 ]
 * ```
 */
export function derLength(length: number): Uint8Array<ArrayBuffer> {
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** One DER element: tag, length, contents. */
function derElement(
  tag: number,
  parts: readonly Uint8Array[],
): Uint8Array<ArrayBuffer> {
  const size = parts.reduce((sum, part) => sum + part.length, 0);
  const length = derLength(size);
  const out = new Uint8Array(1 + length.length + size);
  out[0] = tag;
  out.set(length, 1);
  let at = 1 + length.length;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** True when `der` is exactly one SEQUENCE whose length covers it all. */
function isWholeSequence(der: Uint8Array): boolean {
  if (der.length < 2 || der[0] !== 0x30) return false;
  const first = der[1]!;
  if (first < 0x80) return 2 + first === der.length;
  const count = first & 0x7f;
  if (count === 0 || count > 4 || der.length < 2 + count) return false;
  let length = 0;
  for (let i = 0; i < count; i++) length = length * 256 + der[2 + i]!;
  return 2 + count + length === der.length;
}

/** The PEM text: `\n` made newlines, base64 of a PEM decoded; or an error. */
function pemText(text: string): string | { ok: false; error: string } {
  let pem = text.trim().replace(/^(["'])([\s\S]*)\1$/, "$2").trim();
  if (pem === "") return fail("the key is empty");
  pem = pem.replace(/\\r\\n|\\n/g, "\n");
  if (pem.includes("-----BEGIN")) return pem;
  const bytes = decodeBase64(pem.replace(/\s+/g, ""));
  const decoded = bytes === null
    ? ""
    : new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  if (!decoded.includes("-----BEGIN")) {
    return fail(
      "the key is neither PEM text (-----BEGIN RSA PRIVATE KEY-----) nor base64 of it",
    );
  }
  return decoded.replace(/\\r\\n|\\n/g, "\n");
}

/** Standard base64 (padding optional) to bytes; `null` if it is not. */
function decodeBase64(text: string): Uint8Array<ArrayBuffer> | null {
  if (!BASE64.test(text) || text.length % 4 === 1) return null;
  try {
    const binary = atob(text);
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

function fail(error: string): { ok: false; error: string } {
  return { ok: false, error };
}
