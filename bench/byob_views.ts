// How the peak memory of reading one request body depends on the size of the
// BYOB views it is read into (the reason for READ_VIEW_BYTES in
// lib/http/body.ts). For each view size, a fresh subprocess runs a Deno.serve
// that reads a 25 MiB body into one buffer through a BYOB reader, views of
// at most that size, and answers; this process sends the body with fetch and
// reads the server's peak RSS (VmHWM) growth over its idle RSS from /proc.
//
//   deno run --allow-run --allow-net=127.0.0.1 --allow-read bench/byob_views.ts

const BODY_BYTES = 25 * 1024 * 1024;
const VIEWS: [string, number][] = [
  ["the whole remaining length", Infinity],
  ["4 MiB", 4 * 1024 * 1024],
  ["1 MiB", 1024 * 1024],
  ["64 KiB", 64 * 1024],
];

async function serve(view: number): Promise<void> {
  // Child: read the body into one buffer, views of at most `view` bytes.
  const server = Deno.serve(
    {
      hostname: "127.0.0.1",
      port: 0,
      onListen: ({ port }) => console.log(port),
    },
    async (request) => {
      let reader: ReadableStreamBYOBReader;
      try {
        reader = request.body!.getReader({ mode: "byob" });
      } catch {
        // A small body Deno already holds whole is not a byte stream.
        return new Response(String((await request.arrayBuffer()).byteLength));
      }
      let buffer = new ArrayBuffer(BODY_BYTES + 1);
      let total = 0;
      while (true) {
        const size = Math.min(buffer.byteLength - total, view);
        const step = await reader.read(new Uint8Array(buffer, total, size));
        if (step.value) buffer = step.value.buffer;
        if (step.done) break;
        total += step.value.byteLength;
      }
      return new Response(String(total));
    },
  );
  await server.finished;
}

function status(pid: number): { rss: number; hwm: number } {
  const text = new TextDecoder().decode(
    new Deno.Command("cat", { args: [`/proc/${pid}/status`] }).outputSync()
      .stdout,
  );
  const kb = (name: string) =>
    Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(text)?.[1] ?? 0) * 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

async function measure(view: number): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net=127.0.0.1", import.meta.filename!, String(view)],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    const port = Number((await reader.read()).value?.trim());
    const url = `http://127.0.0.1:${port}/`;
    // Warm up the path, then settle.
    await (await fetch(url, { method: "POST", body: "x" })).text();
    await new Promise((r) => setTimeout(r, 300));
    const idle = status(child.pid).rss;
    const body = new Uint8Array(BODY_BYTES).fill(97);
    const read = Number(
      await (await fetch(url, { method: "POST", body })).text(),
    );
    if (read !== BODY_BYTES) throw new Error(`the server read ${read} bytes`);
    reader.releaseLock();
    return (status(child.pid).hwm - idle) / BODY_BYTES;
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

if (Deno.args.length > 0) {
  await serve(Number(Deno.args[0]));
} else {
  console.log(
    `peak RSS growth over idle reading a 25 MiB body, by view size (× the body):`,
  );
  for (const [name, view] of VIEWS) {
    const runs: string[] = [];
    for (let i = 0; i < 3; i++) runs.push((await measure(view)).toFixed(2));
    console.log(`  ${name.padEnd(28)} ${runs.join(" ")}`);
  }
}
