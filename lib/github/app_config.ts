/**
 * Start-up loading of the GitHub App's private key: reads the file named by
 * `GITHUB_APP_PRIVATE_KEY_PATH` (or takes `GITHUB_APP_PRIVATE_KEY`'s text)
 * and imports it as an RS256 signing key ({@link loadAppKey}). Every failure
 * is a {@link StartupError} naming the variable (and the path), never the
 * key's content.
 *
 * It does not parse PEM or DER itself beyond a temporary PKCS#8 importer
 * (see {@link LoadAppKeyOptions.importKey}), does not make JWTs (that is
 * `app_auth.ts`) and does not read the environment (`loadConfig` does).
 *
 * @module
 */

import type { GitHubAppConfig } from "../config/config.ts";
import { StartupError } from "../_util/errors.ts";

/** What importing a key's text gives: the signing key, or why not (without the key). */
export type ImportKeyResult =
  | { ok: true; key: CryptoKey }
  | { ok: false; error: string };

/** The largest key file read, in bytes: an RSA-4096 PEM is about 3.3 KB. */
export const MAX_KEY_FILE_BYTES = 65_536;

/** Options of {@link loadAppKey}. */
export interface LoadAppKeyOptions {
  /**
   * Imports a key's text; its `error` must never contain the key.
   *
   * TODO(lead): default to `importAppKey` from `./app_key.ts` (same
   * signature; PKCS#1, PKCS#8, `\n`-escaped and base64 forms) once it is on
   * this branch, and delete {@link importPkcs8Pem}.
   *
   * @default importPkcs8Pem
   */
  importKey?: (text: string) => Promise<ImportKeyResult>;
  /** Reads the key file. @default Deno.readFile */
  readFile?: (path: string) => Promise<Uint8Array>;
  /** Describes the key file. @default Deno.stat */
  stat?: (path: string) => Promise<Deno.FileInfo>;
}

/**
 * Loads and imports the App's private key at start; throws a
 * {@link StartupError} naming `GITHUB_APP_PRIVATE_KEY` or
 * `GITHUB_APP_PRIVATE_KEY_PATH` (and the path) when it cannot.
 *
 * @example
 * ```ts
 * import { loadAppKey } from "./app_config.ts";
 * try {
 *   await loadAppKey({ id: "1", key: { text: "not a key" } });
 * } catch (err) {
 *   (err as Error).message; // "GITHUB_APP_PRIVATE_KEY does not hold a usable private key: …"
 * }
 * ```
 */
export async function loadAppKey(
  app: GitHubAppConfig,
  options: LoadAppKeyOptions = {},
): Promise<CryptoKey> {
  const { importKey = importPkcs8Pem } = options;
  const where = "path" in app.key
    ? `GITHUB_APP_PRIVATE_KEY_PATH (${JSON.stringify(app.key.path)})`
    : "GITHUB_APP_PRIVATE_KEY";
  const text = "path" in app.key
    ? await readKeyFile(app.key.path, options)
    : app.key.text;
  let result: ImportKeyResult;
  try {
    result = await importKey(text);
  } catch {
    result = { ok: false, error: "the key could not be imported" };
  }
  if (!result.ok) {
    throw new StartupError(
      `${where} does not hold a usable private key: ${result.error}. Use the .pem file generated on the App's settings page`,
    );
  }
  return result.key;
}

/** The key file's text; a {@link StartupError} naming the path when it cannot be read. */
async function readKeyFile(
  path: string,
  options: LoadAppKeyOptions,
): Promise<string> {
  const { readFile = Deno.readFile, stat = Deno.stat } = options;
  const cannot = `GITHUB_APP_PRIVATE_KEY_PATH is ${
    JSON.stringify(path)
  }, which`;
  let bytes: Uint8Array;
  try {
    const info = await stat(path);
    if (!info.isFile) throw new StartupError(`${cannot} is not a file`);
    if (info.size > MAX_KEY_FILE_BYTES) {
      throw new StartupError(
        `${cannot} is ${info.size} bytes long, too long for a private key (at most ${MAX_KEY_FILE_BYTES})`,
      );
    }
    bytes = await readFile(path);
  } catch (err) {
    if (err instanceof StartupError) throw err;
    throw new StartupError(`${cannot} ${readProblem(err, path)}`);
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new StartupError(`${cannot} is not a text (PEM) file`);
  }
}

/** Why a file could not be read, in words, without its content. */
function readProblem(err: unknown, path: string): string {
  if (err instanceof Deno.errors.NotFound) return "does not exist";
  if (err instanceof Deno.errors.NotCapable) {
    return `the server may not read: add --allow-read=${path} (deno task flags does)`;
  }
  if (err instanceof Deno.errors.PermissionDenied) {
    return "the server's user may not read (check its owner and mode, e.g. chmod 600 for that user)";
  }
  return `cannot be read (${err instanceof Error ? err.name : "error"})`;
}

/**
 * A temporary importer: a PKCS#8 PEM (`BEGIN PRIVATE KEY`), possibly with
 * `\n` written for newlines, as an RSASSA-PKCS1-v1_5 SHA-256 signing key.
 * PKCS#1 keys (`BEGIN RSA PRIVATE KEY`, GitHub's format) are refused with a
 * hint to convert them. Replaced by `importAppKey` (see the TODO above).
 *
 * @example
 * ```ts
 * import { importPkcs8Pem } from "./app_config.ts";
 * (await importPkcs8Pem("hello")).ok; // false
 * ```
 */
export async function importPkcs8Pem(text: string): Promise<ImportKeyResult> {
  const pem = text.replace(/\\n/g, "\n").trim();
  if (pem.includes("BEGIN RSA PRIVATE KEY")) {
    return {
      ok: false,
      error:
        "a PKCS#1 key, not supported yet: convert it with `openssl pkcs8 -topk8 -nocrypt`",
    };
  }
  const match =
    /^-----BEGIN PRIVATE KEY-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END PRIVATE KEY-----$/
      .exec(pem);
  if (!match) {
    return { ok: false, error: "not a PEM private key" };
  }
  let der: Uint8Array<ArrayBuffer>;
  try {
    der = Uint8Array.from(
      atob(match[1]!.replace(/\s+/g, "")),
      (c) => c.charCodeAt(0),
    );
  } catch {
    return { ok: false, error: "its base64 does not decode" };
  }
  try {
    const key = await crypto.subtle.importKey(
      "pkcs8",
      der,
      { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
      false,
      ["sign"],
    );
    return { ok: true, key };
  } catch {
    return { ok: false, error: "not an RSA private key" };
  }
}
