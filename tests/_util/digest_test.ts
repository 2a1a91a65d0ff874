// The SHA-256 body digest against WebCrypto's, across its 1 MiB slices.

import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import { sha256Hex } from "../../lib/_util/digest.ts";

async function webCryptoHex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("sha256Hex() matches WebCrypto for empty, small and multi-slice bodies", async () => {
  assert.equal(
    await sha256Hex(new Uint8Array(0)),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
  for (const size of [3, 1_048_575, 1_048_576, 1_048_577, 2_621_440 + 7]) {
    const bytes = new Uint8Array(size);
    for (let i = 0; i < size; i++) bytes[i] = (i * 31 + (i >> 9)) & 0xff;
    assert.equal(await sha256Hex(bytes), await webCryptoHex(bytes), `${size}`);
  }
});

Deno.test("sha256Hex() hashes a view, not its whole buffer", async () => {
  const whole = new TextEncoder().encode("xxabcxx");
  assert.equal(
    await sha256Hex(whole.subarray(2, 5)),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});

Deno.test("sha256Hex() lets other work run between the slices of a large body", async () => {
  const order: string[] = [];
  const digest = async (bytes: Uint8Array) => {
    await sha256Hex(bytes);
    order.push(`digest of ${bytes.byteLength}`);
  };
  setImmediate(() => order.push("other work"));
  await digest(new Uint8Array(1_000)); // one slice: no yield
  await digest(new Uint8Array(3 * 1_048_576)); // yields between slices
  assert.deepEqual(order, [
    "digest of 1000",
    "other work",
    "digest of 3145728",
  ]);
});
