/**
 * Benchmark server (b): the smallest correct Deno receiver. Reads the body,
 * verifies `X-Hub-Signature-256` with WebCrypto (key imported once), parses
 * the JSON and answers 200; a bad signature gets 401, bad JSON 400. No IP
 * check, no storage. Listens on 127.0.0.1:`PORT`.
 *
 * @module
 */

import { BENCH_SECRET } from "./_payload.ts";

const port = Number(Deno.env.get("PORT") ?? "8000");
const key = await crypto.subtle.importKey(
  "raw",
  new TextEncoder().encode(BENCH_SECRET),
  { name: "HMAC", hash: "SHA-256" },
  false,
  ["verify"],
);
const decoder = new TextDecoder("utf-8", { fatal: true });

function hexToBytes(header: string | null): Uint8Array<ArrayBuffer> | null {
  if (
    header === null || header.length !== 71 || !header.startsWith("sha256=")
  ) {
    return null;
  }
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    const byte = parseInt(header.slice(7 + 2 * i, 9 + 2 * i), 16);
    if (Number.isNaN(byte)) return null;
    out[i] = byte;
  }
  return out;
}

Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, async (req) => {
  const body = await req.bytes();
  const signature = hexToBytes(req.headers.get("x-hub-signature-256"));
  if (
    signature === null ||
    !(await crypto.subtle.verify("HMAC", key, signature, body))
  ) {
    return new Response("bad signature", { status: 401 });
  }
  try {
    JSON.parse(decoder.decode(body));
  } catch {
    return new Response("bad payload", { status: 400 });
  }
  return new Response("ok");
});

// Exit cleanly on SIGTERM, so that `--cpu-prof` writes its profile.
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
