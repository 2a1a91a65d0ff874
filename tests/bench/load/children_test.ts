import assert from "node:assert/strict";
import {
  createChildren,
  listeningPort,
  spawnListening,
  stopChild,
} from "../../../bench/load/children.ts";

Deno.test("listeningPort() reads only a positive whole port", () => {
  assert.equal(listeningPort('{"listening":8123}'), 8123);
  assert.equal(listeningPort('{"listening":0}'), null);
  assert.equal(listeningPort('{"listening":"8123"}'), null);
  assert.equal(listeningPort("{not json"), null);
  assert.equal(listeningPort("listening 8123"), null);
});

Deno.test("spawnListening() waits for the child's listening line, and stopChild() stops it", async () => {
  const children = createChildren();
  const code = `
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen({ port }) {
      console.log("starting");
      console.log(JSON.stringify({ listening: port }));
    } }, () => new Response("up"));
    Deno.addSignalListener("SIGTERM", () => server.shutdown());
  `;
  const { child, port, lines } = await spawnListening(
    children,
    "the test server",
    Deno.execPath(),
    ["eval", code],
    10_000,
  );
  try {
    assert.ok(lines.includes("starting"));
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(await res.text(), "up");
  } finally {
    await stopChild(child, 5000);
  }
  assert.equal((await child.status).success, true);
});

Deno.test("spawnListening() throws with the child's output when it exits first", async () => {
  const children = createChildren();
  await assert.rejects(
    () =>
      spawnListening(
        children,
        "the failing server",
        Deno.execPath(),
        ["eval", "console.error('no port for you'); Deno.exit(3)"],
        10_000,
      ),
    /the failing server exited at start:\nno port for you/,
  );
});
