/**
 * Prints a new random webhook secret: 32 bytes from
 * `crypto.getRandomValues`, as 64 hex digits. Needs no permissions.
 *
 * On a terminal it prints the secret with where to put it. With stdout
 * redirected, stdout gets only the `GITHUB_WEBHOOK_SECRET=…` line (the
 * explanation goes to stderr), so `deno task secret >> .env` works.
 *
 * ```sh
 * deno task secret
 * ```
 *
 * @module
 */

/**
 * Returns `bytes` random bytes as lowercase hex (64 digits by default).
 *
 * @example
 * ```ts
 * import { createSecret } from "./secret.ts";
 * createSecret().length; // 64
 * ```
 */
export function createSecret(bytes = 32): string {
  if (!Number.isInteger(bytes) || bytes < 16 || bytes > 65536) {
    throw new RangeError(
      `Cannot create a secret as 'bytes' must be an integer from 16 to 65536: current value is ${bytes}`,
    );
  }
  const buffer = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(buffer, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The explanation printed around the secret. */
function instructions(secret: string): string {
  return `A new webhook secret (32 random bytes, hex). Use the same value twice:

  1. In .env, next to deno.json (or in the server's environment):

       GITHUB_WEBHOOK_SECRET=${secret}

  2. On GitHub, in the webhook's "Secret" field (Settings → Webhooks →
     Add webhook, or Edit), with content type application/json.

Rotating an existing secret? Move the old value to
GITHUB_WEBHOOK_SECRET_PREVIOUS first, so deliveries signed with it are still
accepted until GitHub has the new one. Keep .env out of git.`;
}

if (import.meta.main) {
  const secret = createSecret();
  if (Deno.stdout.isTerminal()) {
    console.log(instructions(secret));
  } else {
    // Redirected (`deno task secret >> .env`): only the variable goes to
    // the file; the value is still shown, for GitHub's "Secret" field.
    console.log(`GITHUB_WEBHOOK_SECRET=${secret}`);
    console.error(instructions(secret));
  }
}
