/**
 * A JSON validator over raw bytes that builds nothing: it checks strict
 * UTF-8 and RFC 8259 syntax in one pass with an explicit stack (no
 * recursion, no depth limit), and picks out the few top-level fields the
 * receiver records (`action`, `repository.full_name`, `sender.login`).
 *
 * `payload.ts` uses it for large bodies, where `TextDecoder` + `JSON.parse`
 * would hold the body three times over (bytes, string, objects) just to
 * learn that it is valid. It accepts exactly what `TextDecoder({ fatal:
 * true })` followed by `JSON.parse` accepts.
 *
 * @module
 */

/** What {@link scanJson} found. */
export type ScanResult =
  | {
    ok: true;
    /** The top-level value is an object. */
    object: boolean;
    /** Top-level string fields picked out, when present. */
    fields: { action?: string; repository?: string; sender?: string };
  }
  | { ok: false; message: string; offset: number };

// Byte classes.
const QUOTE = 0x22, BACKSLASH = 0x5c, LBRACE = 0x7b, RBRACE = 0x7d;
const LBRACKET = 0x5b, RBRACKET = 0x5d, COLON = 0x3a, COMMA = 0x2c;

function isWs(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
}
function isDigit(b: number): boolean {
  return b >= 0x30 && b <= 0x39;
}
function isHex(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) ||
    (b >= 0x61 && b <= 0x66);
}

/** Where a string starts and ends (exclusive, after the closing quote). */
interface Span {
  start: number;
  end: number;
}

const decoder = new TextDecoder();

/**
 * Validates `bytes` as one JSON text and picks out the receiver's fields.
 *
 * @example
 * ```ts
 * import { scanJson } from "./json_scan.ts";
 * const r = scanJson(new TextEncoder().encode('{"action":"opened","sender":{"login":"octocat"}}'));
 * r.ok && r.fields; // { action: "opened", sender: "octocat" }
 * ```
 */
export function scanJson(bytes: Uint8Array): ScanResult {
  const n = bytes.length;
  let i = 0;
  // Skip a UTF-8 byte order mark, as TextDecoder does.
  if (n >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    i = 3;
  }

  const fail = (message: string): ScanResult => ({
    ok: false,
    message,
    offset: i,
  });

  // Stack of containers: 1 = object, 2 = array.
  let stack = new Uint8Array(64);
  let depth = 0;
  let topIsObject = false;
  // The key path of the current value, for depth ≤ 2.
  let key1: string | null = null;
  let key2: string | null = null;
  const fields: { action?: string; repository?: string; sender?: string } = {};

  /** Scans a string starting at the opening quote; returns its span or -1. */
  function scanString(): Span | null {
    const start = i;
    i++; // opening quote
    while (i < n) {
      const b = bytes[i]!;
      if (b === QUOTE) {
        i++;
        return { start, end: i };
      }
      if (b === BACKSLASH) {
        const e = bytes[i + 1];
        if (
          e === QUOTE || e === BACKSLASH || e === 0x2f || e === 0x62 ||
          e === 0x66 ||
          e === 0x6e || e === 0x72 || e === 0x74
        ) {
          i += 2;
        } else if (e === 0x75) {
          if (
            i + 5 < n && isHex(bytes[i + 2]!) && isHex(bytes[i + 3]!) &&
            isHex(bytes[i + 4]!) && isHex(bytes[i + 5]!)
          ) i += 6;
          else return null;
        } else return null;
      } else if (b < 0x20) {
        return null;
      } else if (b < 0x80) {
        i++;
      } else if (!skipUtf8()) {
        return null;
      }
    }
    return null;
  }

  /** Skips one multi-byte UTF-8 sequence at `i`, strictly (no overlongs, surrogates). */
  function skipUtf8(): boolean {
    const b0 = bytes[i]!;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
      const b1 = bytes[i + 1];
      if (b1 === undefined || (b1 & 0xc0) !== 0x80) return false;
      i += 2;
      return true;
    }
    if (b0 >= 0xe0 && b0 <= 0xef) {
      const b1 = bytes[i + 1], b2 = bytes[i + 2];
      if (b1 === undefined || b2 === undefined) return false;
      if ((b1 & 0xc0) !== 0x80 || (b2 & 0xc0) !== 0x80) return false;
      if (b0 === 0xe0 && b1 < 0xa0) return false; // overlong
      if (b0 === 0xed && b1 >= 0xa0) return false; // surrogates
      i += 3;
      return true;
    }
    if (b0 >= 0xf0 && b0 <= 0xf4) {
      const b1 = bytes[i + 1], b2 = bytes[i + 2], b3 = bytes[i + 3];
      if (b1 === undefined || b2 === undefined || b3 === undefined) {
        return false;
      }
      if (
        (b1 & 0xc0) !== 0x80 || (b2 & 0xc0) !== 0x80 || (b3 & 0xc0) !== 0x80
      ) return false;
      if (b0 === 0xf0 && b1 < 0x90) return false; // overlong
      if (b0 === 0xf4 && b1 >= 0x90) return false; // above U+10FFFF
      i += 4;
      return true;
    }
    return false;
  }

  function scanNumber(): boolean {
    if (bytes[i] === 0x2d) i++;
    if (bytes[i] === 0x30) i++;
    else if (i < n && bytes[i]! >= 0x31 && bytes[i]! <= 0x39) {
      while (i < n && isDigit(bytes[i]!)) i++;
    } else return false;
    if (bytes[i] === 0x2e) {
      i++;
      if (!(i < n && isDigit(bytes[i]!))) return false;
      while (i < n && isDigit(bytes[i]!)) i++;
    }
    if (bytes[i] === 0x65 || bytes[i] === 0x45) {
      i++;
      if (bytes[i] === 0x2b || bytes[i] === 0x2d) i++;
      if (!(i < n && isDigit(bytes[i]!))) return false;
      while (i < n && isDigit(bytes[i]!)) i++;
    }
    return true;
  }

  function scanLiteral(word: string): boolean {
    for (let k = 0; k < word.length; k++) {
      if (bytes[i + k] !== word.charCodeAt(k)) return false;
    }
    i += word.length;
    return true;
  }

  function skipWs(): void {
    while (i < n && isWs(bytes[i]!)) i++;
  }

  function decodeString(span: Span): string {
    // Only short, picked strings are decoded; JSON.parse handles escapes.
    return JSON.parse(decoder.decode(bytes.subarray(span.start, span.end)));
  }

  function pick(span: Span): void {
    if (depth === 1 && key1 === "action") {
      fields.action = decodeString(span);
    } else if (depth === 2 && key2 !== null) {
      if (key1 === "repository" && key2 === "full_name") {
        fields.repository = decodeString(span);
      } else if (key1 === "sender" && key2 === "login") {
        fields.sender = decodeString(span);
      }
    }
  }

  // States: expecting a value; after a value; expecting a key (object).
  const VALUE = 0, AFTER = 1, KEY = 2;
  let state = VALUE;

  skipWs();
  if (i >= n) return fail("The payload is empty.");
  while (true) {
    skipWs();
    if (state === VALUE) {
      if (i >= n) return fail("The payload ends early.");
      const b = bytes[i]!;
      if (b === LBRACE || b === LBRACKET) {
        if (depth === 0) topIsObject = b === LBRACE;
        if (depth === stack.length) {
          const bigger = new Uint8Array(stack.length * 2);
          bigger.set(stack);
          stack = bigger;
        }
        stack[depth++] = b === LBRACE ? 1 : 2;
        i++;
        skipWs();
        if (b === LBRACE) {
          if (bytes[i] === RBRACE) {
            i++;
            depth--;
            state = AFTER;
          } else state = KEY;
        } else {
          if (bytes[i] === RBRACKET) {
            i++;
            depth--;
            state = AFTER;
          } else {
            state = VALUE;
          }
        }
        continue;
      }
      if (b === QUOTE) {
        const span = scanString();
        if (span === null) return fail("The payload has an invalid string.");
        pick(span);
      } else if (b === 0x2d || isDigit(b)) {
        if (!scanNumber()) return fail("The payload has an invalid number.");
      } else if (b === 0x74) {
        if (!scanLiteral("true")) return fail("The payload is not valid JSON.");
      } else if (b === 0x66) {
        if (!scanLiteral("false")) {
          return fail("The payload is not valid JSON.");
        }
      } else if (b === 0x6e) {
        if (!scanLiteral("null")) return fail("The payload is not valid JSON.");
      } else {
        return fail("The payload is not valid JSON.");
      }
      state = AFTER;
      continue;
    }
    if (state === KEY) {
      if (bytes[i] !== QUOTE) {
        return fail("The payload has an invalid object key.");
      }
      const span = scanString();
      if (span === null) return fail("The payload has an invalid string.");
      // Track keys at depth 1 and 2 only (cheap: decode only short keys there).
      if (depth <= 2 && span.end - span.start <= 40) {
        const key = decodeString(span);
        if (depth === 1) {
          key1 = key;
          key2 = null;
          // A repeated key replaces the earlier value, as in JSON.parse.
          if (key === "action" || key === "repository" || key === "sender") {
            delete fields[key];
          }
        } else {
          key2 = key;
          if (key1 === "repository" && key === "full_name") {
            delete fields.repository;
          }
          if (key1 === "sender" && key === "login") delete fields.sender;
        }
      } else if (depth === 1) {
        key1 = null;
      } else if (depth === 2) key2 = null;
      skipWs();
      if (bytes[i] !== COLON) {
        return fail("The payload is missing a ':' after a key.");
      }
      i++;
      state = VALUE;
      continue;
    }
    // AFTER a value.
    if (depth === 0) {
      if (i !== n) return fail("The payload has data after the JSON value.");
      return { ok: true, object: topIsObject, fields };
    }
    const container = stack[depth - 1];
    const b = bytes[i];
    if (b === COMMA) {
      i++;
      state = container === 1 ? KEY : VALUE;
      skipWs();
      continue;
    }
    if (
      (container === 1 && b === RBRACE) || (container === 2 && b === RBRACKET)
    ) {
      i++;
      depth--;
      if (depth === 1) key2 = null;
      state = AFTER;
      continue;
    }
    return fail(
      i >= n ? "The payload ends early." : "The payload is not valid JSON.",
    );
  }
}
