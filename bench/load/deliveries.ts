/**
 * The load benchmark's request file: distinct push deliveries, signed once
 * with WebCrypto and cached in bench/out/ under a name that changes with
 * their count, body template and secret. The file's layout is
 * bench/load.lua's (two template lines, then fixed-width records); this
 * module writes it and never sends anything.
 *
 * @module
 */

import {
  BENCH_SECRET,
  type BodyTemplate,
  deliveryIdFor,
  nonceFor,
  pushTemplate,
  randomSalt,
} from "../servers/_payload.ts";
import { sha256Hex } from "../../lib/_util/digest.ts";

/** Length of one record: delivery id (36), signature hex (64), nonce (40). */
const RECORD_LENGTH = 140;
/** Records signed concurrently, then written together. */
const BATCH = 256;

const encoder = new TextEncoder();

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The cached request file's path for `requests` deliveries: the tag
 * changes with the template and the secret, so that a stale file is never
 * reused.
 *
 * @example
 * ```ts
 * import { requestsPath } from "./deliveries.ts";
 * await requestsPath("bench/out/", 3000, { prefix: "{", suffix: "}" });
 * // "bench/out/requests-3000-<12 hex>.txt"
 * ```
 */
export async function requestsPath(
  outDir: string,
  requests: number,
  template: BodyTemplate,
): Promise<string> {
  const tag = (await sha256Hex(
    encoder.encode(
      `v2\n${template.prefix}\n${template.suffix}\n${BENCH_SECRET}`,
    ),
  )).slice(0, 12);
  return `${outDir}requests-${requests}-${tag}.txt`;
}

/**
 * Records `first` … `first + count - 1`: delivery id, HMAC of the body
 * (prefix + nonce + suffix) and nonce, fixed width, no separators.
 */
async function signRecords(
  key: CryptoKey,
  template: BodyTemplate,
  salt: string,
  first: number,
  count: number,
): Promise<string[]> {
  return await Promise.all(
    Array.from({ length: count }, async (_, j) => {
      const n = first + j;
      const nonce = nonceFor(salt, n);
      const body = encoder.encode(template.prefix + nonce + template.suffix);
      const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, body));
      // Fixed width, no separators: see bench/load.lua.
      const record = deliveryIdFor(salt, n) + hex(mac) + nonce;
      if (record.length !== RECORD_LENGTH) {
        throw new Error(`bad record ${record}`);
      }
      return record;
    }),
  );
}

/** Writes the whole request file to `path` (its template lines, then the records). */
async function writeRequests(
  path: string,
  requests: number,
  template: BodyTemplate,
): Promise<void> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(BENCH_SECRET),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const salt = randomSalt();
  const file = await Deno.open(path, {
    write: true,
    create: true,
    truncate: true,
  });
  try {
    await file.write(
      encoder.encode(`${template.prefix}\n${template.suffix}\n`),
    );
    for (let i = 0; i < requests; i += BATCH) {
      const lines = await signRecords(
        key,
        template,
        salt,
        i,
        Math.min(BATCH, requests - i),
      );
      const bytes = encoder.encode(lines.join(""));
      for (let off = 0; off < bytes.byteLength;) {
        off += await file.write(bytes.subarray(off));
      }
    }
  } finally {
    file.close();
  }
}

/**
 * The request file of `requests` distinct signed deliveries in `outDir`,
 * made (and reported on stderr) only if it is not there yet.
 *
 * @example
 * ```ts
 * import { prepareRequests } from "./deliveries.ts";
 * // const dataFile = await prepareRequests(OUT, options.requests);
 * ```
 */
export async function prepareRequests(
  outDir: string,
  requests: number,
): Promise<string> {
  const template = await pushTemplate();
  const path = await requestsPath(outDir, requests, template);
  try {
    await Deno.stat(path);
    return path;
  } catch { /* make it */ }
  await Deno.mkdir(outDir, { recursive: true });
  const started = performance.now();
  console.error(`preparing ${requests} signed deliveries in ${path} …`);
  const tmp = `${path}.partial`;
  await writeRequests(tmp, requests, template);
  await Deno.rename(tmp, path);
  console.error(
    `prepared in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return path;
}
