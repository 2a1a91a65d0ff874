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
import { importAppKey } from "./app_key.ts";

/** What importing a key's text gives: the signing key, or why not (without the key). */
export type ImportKeyResult =
  | { ok: true; key: CryptoKey }
  | { ok: false; error: string };

/** The largest key file read, in bytes: an RSA-4096 PEM is about 3.3 KB. */
export const MAX_KEY_FILE_BYTES = 65_536;

/** Options of {@link loadAppKey}. */
export interface LoadAppKeyOptions {
  /**
   * Imports a key's text (PKCS#1, PKCS#8, `\n`-escaped or base64); its
   * `error` must never contain the key.
   *
   * @default importAppKey
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
  const { importKey = importAppKey } = options;
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
