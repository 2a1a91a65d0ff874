/**
 * Benchmark server (a): the ceiling of the HTTP stack. `Deno.serve` reads
 * the whole body (so the connection stays alive) and answers 200. Listens on
 * 127.0.0.1:`PORT`.
 *
 * @module
 */

const port = Number(Deno.env.get("PORT") ?? "8000");

Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, async (req) => {
  await req.arrayBuffer();
  return new Response("ok");
});

// Exit cleanly on SIGTERM, so that `--cpu-prof` writes its profile.
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
