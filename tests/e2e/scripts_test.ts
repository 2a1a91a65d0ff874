// End to end: hook scripts (HOOKS_DIR) and SERIALIZE_BY under the real
// main.ts as a subprocess. Fixture scripts (`#!/bin/sh`) are written at test
// time into temporary folders; what they saw is read back from files they
// write and from `GET /deliveries/<id>`. Linux only: the scripts read
// /proc/$$/environ, and the tests read /proc/<pid>/stat.

import assert from "node:assert/strict";
import { inheritedEnv } from "../../bench/_subprocess.ts";
import {
  freePort,
  postDelivery,
  SECRET,
  type ServerProcess,
  startServer,
  waitFor,
} from "../_helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const ADMIN_TOKEN = "admin-t0ken-for-script-tests";
const PREVIOUS_SECRET = "the-previous-webhook-secret-value";
const SHA = "6dcb09b5b57875f334f61aebed695e2e4193db5e";
const LINUX = Deno.build.os === "linux";

/** The folders of one test: scripts, payload files, server cwd, results. */
interface World {
  root: string;
  hooks: string;
  tmp: string;
  cwd: string;
  out: string;
}

async function makeWorld(): Promise<World> {
  const root = await Deno.realPath(
    await Deno.makeTempDir({ prefix: "hookgate-scripts-" }),
  );
  const world = {
    root,
    hooks: `${root}/hooks`,
    tmp: `${root}/tmp`,
    cwd: `${root}/cwd`,
    out: `${root}/out`,
  };
  for (const dir of [world.hooks, world.tmp, world.cwd, world.out]) {
    await Deno.mkdir(dir);
  }
  return world;
}

/** Writes a `#!/bin/sh` script (its folder made as needed). */
async function writeScript(
  path: string,
  body: string,
  mode = 0o755,
): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(path, `#!/bin/sh\n${body}\n`);
  await Deno.chmod(path, mode);
}

function serverEnv(
  world: World,
  env: Record<string, string> = {},
): Record<string, string> {
  return {
    GITHUB_WEBHOOK_SECRET: SECRET,
    IP_ALLOWLIST: "off",
    ADMIN_TOKEN,
    KV_PATH: "./data/hookgate.kv",
    HOOKS_DIR: world.hooks,
    TMPDIR: world.tmp,
    ...env,
  };
}

/** What `deno task start` adds for HOOKS_DIR, for this world's folders. */
function hookFlags(world: World, hooksDir = world.hooks): string[] {
  return [
    "--allow-run",
    `--allow-read=${hooksDir}`,
    `--allow-write=${world.tmp}`,
  ];
}

function startWithHooks(
  world: World,
  env: Record<string, string> = {},
  cwd = world.cwd,
): Promise<ServerProcess> {
  return startServer(serverEnv(world, env), {
    cwd,
    extraFlags: hookFlags(world, env.HOOKS_DIR ?? world.hooks),
  });
}

/** A push as GitHub sends it (enough for the bundled push handler). */
function pushBody(branch: string, repo = "myapp"): string {
  return JSON.stringify({
    ref: `refs/heads/${branch}`,
    before: "0".repeat(40),
    after: SHA,
    created: false,
    deleted: false,
    forced: false,
    commits: [],
    head_commit: null,
    pusher: { name: "octocat", email: null },
    repository: { id: 1, name: repo, full_name: `octo/${repo}` },
    sender: { login: "octocat" },
    nonce: crypto.randomUUID(),
  });
}

/** A run report as `GET /deliveries/<id>` shows it. */
interface Run {
  handler: string;
  kind: "handler" | "script";
  attempt: number;
  ok: boolean;
  ms: number;
  exitCode?: number | null;
  signal?: string | null;
  error?: string;
  output?: string;
}

interface Detail {
  id: string;
  status: string;
  attempts: number;
  error: string | null;
  runs: Run[];
}

async function detail(url: string, id: string): Promise<Detail | null> {
  const res = await fetch(`${url}/deliveries/${id}`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  assert.equal(res.status, 200);
  return await res.json();
}

const FINAL = new Set(["done", "skipped", "dead"]);

/** The record once it is done, skipped or dead. */
function settled(url: string, id: string, ms = 10_000): Promise<Detail> {
  return waitFor(
    async () => {
      const record = await detail(url, id);
      return record && FINAL.has(record.status) ? record : null;
    },
    ms,
    `delivery ${id} to end`,
  );
}

/** Posts a signed delivery and expects 202; returns its id. */
async function post(url: string, event: string, body: string): Promise<string> {
  const id = crypto.randomUUID();
  const res = await postDelivery(url, { event, id, body });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return id;
}

function scriptRuns(record: Detail): Run[] {
  return record.runs.filter((run) => run.kind === "script");
}

async function readLines(path: string): Promise<string[]> {
  return (await Deno.readTextFile(path)).split("\n").filter((l) => l !== "");
}

/**
 * A process's state letter (`R`, `S`, `Z`, …) and parent, from
 * /proc/<pid>/stat; null when it is gone. Read with `cat`: Deno wants
 * --allow-all to read another process's /proc entries. A zombie is dead:
 * this machine's PID 1 does not reap the orphans it inherits, so `kill -0`
 * alone would call them alive.
 */
async function procState(
  pid: number,
): Promise<{ state: string; ppid: number } | null> {
  const out = await new Deno.Command("cat", {
    args: [`/proc/${pid}/stat`],
    stdin: "null",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success) {
    assert.match(err, /No such file/, err);
    return null;
  }
  const stat = new TextDecoder().decode(out.stdout);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0]!, ppid: Number(fields[1]) };
}

/** The `count` pids a script wrote on one line to `path`, once it has. */
async function readPids(path: string, count: number): Promise<number[]> {
  const line = await waitFor(
    async () => {
      try {
        const text = await Deno.readTextFile(path);
        return text.endsWith("\n") ? text.trim() : "";
      } catch {
        return "";
      }
    },
    5000,
    `pids in ${path}`,
  );
  const pids = line.split(" ").map(Number);
  assert.equal(pids.length, count, line);
  assert.ok(pids.every((pid) => Number.isSafeInteger(pid) && pid > 1), line);
  return pids;
}

async function isRunning(pid: number): Promise<boolean> {
  const state = await procState(pid);
  return state !== null && state.state !== "Z";
}

/** Fails if `server` left a zombie child of its own (one it never reaped). */
async function assertNoZombieOf(server: number, pids: number[]) {
  for (const pid of pids) {
    const state = await procState(pid);
    assert.ok(
      !(state?.state === "Z" && state.ppid === server),
      `pid ${pid} is a zombie the server never reaped`,
    );
  }
}

/** Log lines (parsed) printed since index `from`, with this `msg`. */
function logged(
  server: ServerProcess,
  from: number,
  msg: string,
): Record<string, unknown>[] {
  return server.lines.slice(from).flatMap((line) => {
    try {
      const parsed = JSON.parse(line);
      return parsed.msg === msg ? [parsed] : [];
    } catch {
      return [];
    }
  });
}

async function cleanUp(world: World, ...servers: ServerProcess[]) {
  for (const server of servers) assert.equal((await server.stop()).code, 0);
  await Deno.remove(world.root, { recursive: true });
}

Deno.test({
  name:
    "hook scripts run in the contract's order (E-name-B, E-name, E, all), and unrunnable candidates are skipped",
  ignore: !LINUX,
  async fn(t) {
    const world = await makeWorld();
    const log = `${world.out}/log`;
    const append = (name: string) => `printf '%s\\n' '${name}' >> '${log}'`;
    const names = [
      "push-myapp-main",
      "push-myapp",
      "push",
      "all",
      "ping",
      "push-myapp-feature/x",
      // Candidates of other deliveries, which must not run here.
      "push-myapp-dev",
      "push-other-main",
      "push-other",
      "issues",
    ];
    for (const name of names) {
      await writeScript(`${world.hooks}/${name}`, append(name));
    }
    await writeScript(`${world.root}/outside/evil`, append("outside"));
    const server = await startWithHooks(world);
    const run = async (event: string, body: string) => {
      await Deno.writeTextFile(log, "");
      const record = await settled(
        server.url,
        await post(server.url, event, body),
      );
      assert.equal(record.status, "done", record.error ?? "");
      const ran = scriptRuns(record);
      assert.ok(ran.every((r) => r.ok && r.exitCode === 0 && r.attempt === 1));
      return {
        lines: await readLines(log),
        handlers: ran.map((r) => r.handler),
      };
    };
    const ALL_FOUR = ["push-myapp-main", "push-myapp", "push", "all"];
    const WITHOUT_FIRST = ["push-myapp", "push", "all"];
    try {
      await t.step(
        "a push to main runs all four, one after another, in order",
        async () => {
          const { lines, handlers } = await run("push", pushBody("main"));
          assert.deepEqual(lines, ALL_FOUR);
          assert.deepEqual(handlers, ALL_FOUR);
        },
      );

      await t.step(
        "a ping without a repository runs only ping and all",
        async () => {
          const ping = JSON.stringify({
            zen: "Design for failure.",
            hook_id: 1,
            hook: { type: "Organization", id: 1, events: ["push"] },
            nonce: crypto.randomUUID(),
          });
          const { lines } = await run("ping", ping);
          assert.deepEqual(lines, ["ping", "all"]);
        },
      );

      await t.step(
        "a branch with a / runs the script in the sub-folder",
        async () => {
          const { lines, handlers } = await run("push", pushBody("feature/x"));
          const expected = [
            "push-myapp-feature/x",
            "push-myapp",
            "push",
            "all",
          ];
          assert.deepEqual(lines, expected);
          assert.deepEqual(handlers, expected);
        },
      );

      const first = `${world.hooks}/push-myapp-main`;
      const variants: [string, RegExp, () => Promise<void>][] = [
        ["a directory", /not a regular file/, () => Deno.mkdir(first)],
        [
          "a file without an execute bit",
          /not executable/,
          () => writeScript(first, append("push-myapp-main"), 0o644),
        ],
        [
          "a symlink to a script outside HOOKS_DIR",
          /outside HOOKS_DIR/,
          () => Deno.symlink(`${world.root}/outside/evil`, first),
        ],
      ];
      for (const [what, reason, make] of variants) {
        await t.step(
          `push-myapp-main as ${what} is skipped; the others run`,
          async () => {
            await Deno.remove(first, { recursive: true });
            await make();
            const from = server.lines.length;
            const { lines, handlers } = await run("push", pushBody("main"));
            assert.deepEqual(lines, WITHOUT_FIRST);
            assert.deepEqual(handlers, WITHOUT_FIRST);
            const warnings = logged(server, from, "hook script skipped");
            assert.ok(
              warnings.some((w) =>
                w.handler === "push-myapp-main" && reason.test(String(w.reason))
              ),
              `a warning naming why: ${JSON.stringify(warnings)}`,
            );
          },
        );
      }

      await t.step(
        "a symlink to a script inside HOOKS_DIR runs (under its own name)",
        async () => {
          await Deno.remove(first, { recursive: true });
          await Deno.symlink("push", first);
          const { lines, handlers } = await run("push", pushBody("main"));
          assert.deepEqual(lines, ["push", "push-myapp", "push", "all"]);
          assert.deepEqual(handlers, ALL_FOUR);
        },
      );
    } finally {
      await cleanUp(world, server);
    }
  },
});

/** Records argv, the payload file, stdin, cwd and the environment it got. */
const RECORDER = `set -eu
d="$RESULTS_DIR/$HOOKGATE_DELIVERY"
mkdir -p "$d"
printf '%s' "$#" > "$d/argc"
printf '%s' "$1" > "$d/arg1"
cat "$1" > "$d/file"
printf '%s' "$2" > "$d/arg2"
cat > "$d/stdin"
pwd -P > "$d/pwd"
cat /proc/$$/environ > "$d/environ"`;

/** The environment in a /proc/<pid>/environ text. */
function parseEnviron(text: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const entry of text.split("\0").filter((e) => e !== "")) {
    const eq = entry.indexOf("=");
    env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return env;
}

Deno.test({
  name:
    "a script gets argv [payload file, event], the exact body on stdin, HOOKS_DIR as cwd and exactly the contract's environment",
  ignore: !LINUX,
  async fn(t) {
    const world = await makeWorld();
    await writeScript(`${world.hooks}/all`, RECORDER);
    // HOOKS_DIR named through a symlink: the cwd is the real folder.
    const link = `${world.root}/hooks-link`;
    await Deno.symlink(world.hooks, link);
    const server = await startServer(
      serverEnv(world, {
        HOOKS_DIR: link,
        HOOKS_ENV: "RESULTS_DIR",
        RESULTS_DIR: world.out,
        GITHUB_WEBHOOK_SECRET_PREVIOUS: PREVIOUS_SECRET,
        UNRELATED_SERVER_VARIABLE: "not-for-scripts",
      }),
      {
        cwd: world.cwd,
        extraFlags: [...hookFlags(world, link), `--allow-read=${world.hooks}`],
      },
    );
    const seen = async (id: string) => {
      const d = `${world.out}/${id}`;
      return {
        argc: await Deno.readTextFile(`${d}/argc`),
        arg1: await Deno.readTextFile(`${d}/arg1`),
        arg2: await Deno.readTextFile(`${d}/arg2`),
        file: await Deno.readFile(`${d}/file`),
        stdin: await Deno.readFile(`${d}/stdin`),
        pwd: (await Deno.readTextFile(`${d}/pwd`)).trimEnd(),
        environText: await Deno.readTextFile(`${d}/environ`),
      };
    };
    const expectedNames = [
      "HOME",
      "HOOKGATE_ACTION",
      "HOOKGATE_ATTEMPT",
      "HOOKGATE_BRANCH",
      "HOOKGATE_DELIVERY",
      "HOOKGATE_EVENT",
      "HOOKGATE_REPOSITORY",
      "HOOKGATE_SENDER",
      "HOOKGATE_SHA",
      "PATH",
      "RESULTS_DIR",
    ];
    const assertNoSecret = (environText: string) => {
      for (const secret of [SECRET, PREVIOUS_SECRET, ADMIN_TOKEN]) {
        assert.ok(!environText.includes(secret), "a secret reached a script");
      }
      assert.ok(!environText.includes("not-for-scripts"));
      assert.ok(!environText.includes("GITHUB_TOKEN"));
    };
    try {
      await t.step(
        "a push with unusual whitespace: byte-identical payload, exact environment",
        async () => {
          const body = '\r\n\t{ "ref" :\t"refs/heads/main" ,\r\n  "before":"' +
            "0".repeat(40) + '",   "after" : "' + SHA +
            '", "created":false,"deleted":false,"forced":false,\n\n' +
            '"commits" : [ ] , "head_commit":null, "pusher":{"name":"octocat","email":null},' +
            '"repository":{ "id":1,"name":"myapp","full_name":"octo/myapp" },' +
            '"sender":{"login":"octocat"}, "note":"caf\u00e9 \\u2028 \u2603 \\"q\\"",' +
            `"nonce":"${crypto.randomUUID()}"  }  \n\n\t `;
          const id = await post(server.url, "push", body);
          const record = await settled(server.url, id);
          assert.equal(record.status, "done", record.error ?? "");
          const got = await seen(id);
          const bytes = new TextEncoder().encode(body);
          assert.equal(got.argc, "2");
          assert.deepEqual(got.file, bytes, "$1 holds the exact body bytes");
          assert.deepEqual(got.stdin, bytes, "stdin is the exact body bytes");
          assert.equal(got.arg2, "push");
          assert.equal(got.pwd, world.hooks);
          assert.ok(
            got.arg1.startsWith(`${world.tmp}/`),
            `the payload file is in TMPDIR: ${got.arg1}`,
          );
          await assert.rejects(() => Deno.stat(got.arg1), Deno.errors.NotFound);
          const env = parseEnviron(got.environText);
          assert.deepEqual([...env.keys()].sort(), expectedNames);
          assert.deepEqual(Object.fromEntries(env), {
            PATH: Deno.env.get("PATH"),
            HOME: Deno.env.get("HOME"),
            RESULTS_DIR: world.out,
            HOOKGATE_EVENT: "push",
            HOOKGATE_ACTION: "",
            HOOKGATE_DELIVERY: id,
            HOOKGATE_ATTEMPT: "1",
            HOOKGATE_REPOSITORY: "octo/myapp",
            HOOKGATE_BRANCH: "main",
            HOOKGATE_SHA: SHA,
            HOOKGATE_SENDER: "octocat",
          });
          assertNoSecret(got.environText);
        },
      );

      await t.step(
        "an event with an action and a head_sha but no branch",
        async () => {
          const headSha = "a".repeat(40);
          const body = JSON.stringify({
            action: "completed",
            workflow_run: { id: 7, head_sha: headSha, head_branch: "main" },
            repository: { id: 1, name: "myapp", full_name: "octo/myapp" },
            sender: { login: "hubot" },
            nonce: crypto.randomUUID(),
          });
          const id = await post(server.url, "workflow_run", body);
          const record = await settled(server.url, id);
          assert.equal(record.status, "done", record.error ?? "");
          const got = await seen(id);
          assert.equal(got.arg2, "workflow_run");
          assert.deepEqual(got.stdin, new TextEncoder().encode(body));
          const env = parseEnviron(got.environText);
          assert.deepEqual([...env.keys()].sort(), expectedNames);
          assert.equal(env.get("HOOKGATE_EVENT"), "workflow_run");
          assert.equal(env.get("HOOKGATE_ACTION"), "completed");
          assert.equal(env.get("HOOKGATE_SHA"), headSha);
          assert.equal(env.get("HOOKGATE_BRANCH"), "");
          assert.equal(env.get("HOOKGATE_SENDER"), "hubot");
          await assert.rejects(() => Deno.stat(got.arg1), Deno.errors.NotFound);
          assertNoSecret(got.environText);
        },
      );
    } finally {
      await cleanUp(world, server);
    }
  },
});

/** A fake classic token: 40 characters, never valid anywhere. */
const FAKE_TOKEN = "ghp_" + "Zq7".repeat(12);

Deno.test({
  name: "a script gets the server's GITHUB_TOKEN (no App), and no secret",
  ignore: !LINUX,
  async fn() {
    const world = await makeWorld();
    await writeScript(
      `${world.hooks}/push-myapp-main`,
      `cat /proc/$$/environ > '${world.out}/environ'`,
    );
    const server = await startWithHooks(world, { GITHUB_TOKEN: FAKE_TOKEN });
    try {
      const id = await post(server.url, "push", pushBody("main"));
      const record = await settled(server.url, id);
      assert.equal(record.status, "done", record.error ?? "");
      const text = await Deno.readTextFile(`${world.out}/environ`);
      const env = parseEnviron(text);
      assert.equal(env.get("GITHUB_TOKEN"), FAKE_TOKEN);
      assert.ok(!text.includes(SECRET) && !text.includes(ADMIN_TOKEN));
      assert.deepEqual(
        [...env.keys()].filter((k) => !k.startsWith("HOOKGATE_")).sort(),
        ["GITHUB_TOKEN", "HOME", "PATH"],
      );
    } finally {
      await cleanUp(world, server);
    }
  },
});

Deno.test({
  name:
    "a script that prints its GITHUB_TOKEN has [redacted] in its stored output",
  async fn() {
    const world = await makeWorld();
    await writeScript(
      `${world.hooks}/push-myapp-main`,
      `echo "token=$GITHUB_TOKEN"; echo "again: $GITHUB_TOKEN" >&2`,
    );
    const server = await startWithHooks(world, { GITHUB_TOKEN: FAKE_TOKEN });
    try {
      const id = await post(server.url, "push", pushBody("main"));
      const record = await settled(server.url, id);
      assert.equal(record.status, "done", record.error ?? "");
      const [run] = scriptRuns(record);
      assert.ok(run?.output?.includes("token=[redacted]"), run?.output);
      assert.ok(!JSON.stringify(record).includes(FAKE_TOKEN));
    } finally {
      await cleanUp(world, server);
    }
  },
});

Deno.test({
  name:
    "a script failing on attempt 1 is retried to success; both runs are kept",
  ignore: !LINUX,
  async fn() {
    // No variable shortens the retry backoff in a real process: the first
    // retry comes 2.5–5 s later (base 5000 ms, equal jitter), hence the wait.
    const world = await makeWorld();
    await writeScript(
      `${world.hooks}/push-myapp-main`,
      `echo "attempt $HOOKGATE_ATTEMPT"
if [ "$HOOKGATE_ATTEMPT" = 1 ]; then echo boom >&2; exit 3; fi
echo deployed`,
    );
    const server = await startWithHooks(world);
    try {
      const id = await post(server.url, "push", pushBody("main"));
      const record = await settled(server.url, id, 15_000);
      assert.equal(record.status, "done", record.error ?? "");
      assert.equal(record.attempts, 2);
      const [first, second, ...more] = scriptRuns(record);
      assert.equal(more.length, 0);
      assert.deepEqual(
        [first?.handler, first?.attempt, first?.ok, first?.exitCode],
        ["push-myapp-main", 1, false, 3],
      );
      assert.match(first?.output ?? "", /attempt 1\nboom\n/);
      assert.match(first?.error ?? "", /exit status 3/);
      assert.deepEqual(
        [second?.handler, second?.attempt, second?.ok, second?.exitCode],
        ["push-myapp-main", 2, true, 0],
      );
      assert.equal(second?.output, "attempt 2\ndeployed\n");
    } finally {
      await cleanUp(world, server);
    }
  },
});

Deno.test({
  name:
    "a hung script and its TERM-ignoring children are gone after the timeout; the server goes on",
  ignore: !LINUX,
  async fn() {
    const world = await makeWorld();
    const pidsFile = `${world.out}/pids`;
    await writeScript(
      `${world.hooks}/push-myapp-main`,
      `trap '' TERM
sleep 60 &
a=$!
sleep 60 &
b=$!
echo "$$ $a $b" > '${pidsFile}'
wait`,
    );
    await writeScript(
      `${world.hooks}/push-myapp-next`,
      `echo ok > '${world.out}/next'`,
    );
    const server = await startWithHooks(world, {
      HANDLER_TIMEOUT_MS: "500",
      MAX_ATTEMPTS: "1",
    });
    try {
      const id = await post(server.url, "push", pushBody("main"));
      const pids = await readPids(pidsFile, 3);
      for (const pid of pids) assert.ok(await isRunning(pid), "it started");
      const record = await settled(server.url, id);
      assert.equal(record.status, "dead");
      assert.match(record.error ?? "", /timed out after 500 ms/);
      const [run] = scriptRuns(record);
      assert.equal(run?.ok, false);
      assert.equal(run?.signal, "SIGKILL", "SIGTERM was ignored");
      assert.equal(run?.exitCode, null);
      // SIGKILL comes 3 s after SIGTERM: allow up to 5 s in all.
      await waitFor(
        async () => {
          for (const pid of pids) if (await isRunning(pid)) return false;
          return true;
        },
        5000,
        "the script and its children to be gone",
      );
      await assertNoZombieOf(server.child.pid, pids);

      const health = await fetch(`${server.url}/healthz`);
      await health.body?.cancel();
      assert.equal(health.status, 200);
      const next = await settled(
        server.url,
        await post(server.url, "push", pushBody("next")),
      );
      assert.equal(next.status, "done", next.error ?? "");
      assert.equal(await Deno.readTextFile(`${world.out}/next`), "ok\n");
    } finally {
      await cleanUp(world, server);
    }
  },
});

/** One line of the ordering log: `start|end <delivery> <epoch ms>`. */
interface Mark {
  kind: string;
  id: string;
  at: number;
}

async function readMarks(path: string): Promise<Mark[]> {
  return (await readLines(path)).map((line) => {
    const [kind = "", id = "", at = ""] = line.split(" ");
    return { kind, id, at: Number(at) };
  });
}

const MARKER = (log: string, seconds: string) =>
  `echo "start $HOOKGATE_DELIVERY $(date +%s%3N)" >> '${log}'
sleep ${seconds}
echo "end $HOOKGATE_DELIVERY $(date +%s%3N)" >> '${log}'`;

Deno.test({
  name:
    "SERIALIZE_BY=repository: six pushes across two processes on one KV never overlap and start in the order received",
  ignore: !LINUX,
  async fn(t) {
    const world = await makeWorld();
    const log = `${world.out}/log`;
    await writeScript(`${world.hooks}/push-myapp-main`, MARKER(log, "0.3"));
    await writeScript(`${world.hooks}/push-other-main`, MARKER(log, "1"));
    const ordered = { SERIALIZE_BY: "repository" };
    const controlCwd = `${world.root}/cwd-control`;
    await Deno.mkdir(controlCwd);
    const [a, b, control] = await Promise.all([
      startWithHooks(world, ordered),
      startWithHooks(world, ordered),
      startWithHooks(world, {}, controlCwd),
    ]);
    try {
      await t.step(
        "six pushes to octo/myapp, alternately to each process",
        async () => {
          const ids: string[] = [];
          for (let i = 0; i < 6; i++) {
            ids.push(await post([a, b][i % 2]!.url, "push", pushBody("main")));
          }
          for (const id of ids) {
            const record = await settled(a.url, id, 20_000);
            assert.equal(record.status, "done", record.error ?? "");
          }
          const marks = await readMarks(log);
          assert.equal(marks.length, 12);
          // Start, end, start, end… in posting order: no two ever overlap.
          assert.deepEqual(
            marks.map((m) => `${m.kind} ${m.id}`),
            ids.flatMap((id) => [`start ${id}`, `end ${id}`]),
          );
          for (let i = 2; i < marks.length; i += 2) {
            assert.ok(
              marks[i]!.at >= marks[i - 1]!.at,
              "started after the end",
            );
          }
        },
      );

      await t.step(
        "control: another repository is not held up by octo/myapp",
        async () => {
          await Deno.writeTextFile(log, "");
          const other = await post(b.url, "push", pushBody("main", "other"));
          const mine = await post(a.url, "push", pushBody("main"));
          for (const id of [other, mine]) {
            assert.equal((await settled(a.url, id)).status, "done");
          }
          const kinds = (await readMarks(log)).map((m) => `${m.kind} ${m.id}`);
          assert.deepEqual(
            kinds.slice(0, 2).sort(),
            [
              `start ${mine}`,
              `start ${other}`,
            ].sort(),
          );
        },
      );

      await t.step(
        "control: without SERIALIZE_BY two pushes of one repository overlap",
        async () => {
          await Deno.writeTextFile(log, "");
          const first = await post(control.url, "push", pushBody("main"));
          const second = await post(control.url, "push", pushBody("main"));
          for (const id of [first, second]) {
            assert.equal((await settled(control.url, id)).status, "done");
          }
          const kinds = (await readMarks(log)).map((m) => m.kind);
          assert.deepEqual(kinds, ["start", "start", "end", "end"]);
        },
      );
    } finally {
      await cleanUp(world, a, b, control);
    }
  },
});

Deno.test({
  name:
    "with HOOKS_DIR set but no --allow-run the server stops at start, naming the flag and deno task flags",
  ignore: !LINUX,
  async fn() {
    const world = await makeWorld();
    await writeScript(`${world.hooks}/push`, "exit 0");
    const server = await startServer(serverEnv(world), {
      cwd: world.cwd,
      waitForListen: false,
      extraFlags: [`--allow-read=${world.hooks}`, `--allow-write=${world.tmp}`],
    });
    let exit: Deno.CommandStatus | undefined;
    server.child.status.then((s) => exit = s);
    try {
      await waitFor(() => exit, 10_000, "the server to exit");
    } finally {
      await server.stop(); // collects the rest of its output
      await Deno.remove(world.root, { recursive: true });
    }
    assert.notEqual(exit?.code, 0);
    const out = server.lines.join("\n");
    assert.match(out, /Cannot start: HOOKS_DIR is set/);
    assert.match(out, /--allow-run/);
    assert.match(out, /deno task flags/);
    assert.ok(!out.includes('"msg":"listening"'), out);
  },
});

/** A `deno` subprocess with its output lines collected. */
function spawnDeno(
  args: string[],
  cwd: string,
  env: Record<string, string>,
): {
  child: Deno.ChildProcess;
  lines: string[];
  stop(): Promise<Deno.CommandStatus>;
} {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let rest = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      rest += text;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
    }
    if (rest) lines.push(rest);
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let exited = false;
  const status = child.status.then(async (s) => {
    exited = true;
    await pumps;
    return s;
  });
  return {
    child,
    lines,
    async stop() {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
      }
      return await status;
    },
  };
}

/** What `deno task flags` prints for `env`, run in `cwd`, split into flags. */
async function taskFlags(
  cwd: string,
  env: Record<string, string>,
): Promise<string[]> {
  const printed = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--config", `${ROOT}deno.json`, "flags"],
    cwd,
    env,
    clearEnv: true,
    stdin: "null",
  }).output();
  assert.equal(printed.code, 0, new TextDecoder().decode(printed.stderr));
  return new TextDecoder().decode(printed.stdout).trim().split(/\s+/);
}

/** `deno run <flags> main.ts` and nothing more, once it listens. */
async function startUnderFlags(
  flags: string[],
  cwd: string,
  env: Record<string, string>,
): Promise<ReturnType<typeof spawnDeno>> {
  const server = spawnDeno(
    ["run", "--config", `${ROOT}deno.json`, ...flags, `${ROOT}main.ts`],
    cwd,
    env,
  );
  let exited = false;
  server.child.status.then(() => exited = true);
  try {
    await waitFor(
      () => exited || server.lines.some((l) => l.includes('"msg":"listening"')),
      10_000,
      "the server to listen",
    );
  } catch { /* reported below */ }
  if (!server.lines.some((l) => l.includes('"msg":"listening"'))) {
    await server.stop();
    throw new Error(
      `the server did not listen under ${flags.join(" ")}:\n${
        server.lines.join("\n")
      }`,
    );
  }
  return server;
}

Deno.test({
  name:
    "deno task flags prints the narrow --allow-run for the scripts present, and the server runs them under exactly those flags",
  ignore: !LINUX,
  async fn(t) {
    const world = await makeWorld();
    const pidsFile = `${world.out}/pids`;
    await writeScript(
      `${world.hooks}/push-myapp-main`,
      `echo "$HOOKGATE_DELIVERY" > '${world.out}/main'`,
    );
    // Ignores SIGTERM and leaves a child that does too: only a group
    // SIGKILL, through the kill binary under a narrow --allow-run, ends both.
    await writeScript(
      `${world.hooks}/push-myapp-feature/x`,
      `trap '' TERM
sleep 60 &
echo "$$ $!" > '${pidsFile}'
wait`,
    );
    const port = freePort();
    const { TMPDIR: _tmp, ...inherited } = inheritedEnv();
    // No TMPDIR: see the ignored test below.
    const env = {
      ...inherited,
      GITHUB_WEBHOOK_SECRET: SECRET,
      ADMIN_TOKEN,
      HOOKS_DIR: world.hooks,
      IP_ALLOWLIST: "off",
      HOST: "127.0.0.1",
      PORT: String(port),
      KV_PATH: "./data/hookgate.kv",
      HANDLER_TIMEOUT_MS: "500",
      MAX_ATTEMPTS: "1",
      LOG_FORMAT: "json",
      NO_COLOR: "1",
    };
    const flags = await taskFlags(world.cwd, env);
    const valueOf = (name: string) =>
      flags.find((f) => f.startsWith(`${name}=`))?.slice(name.length + 1)
        .split(",") ?? [];
    const kill = await Deno.realPath("/usr/bin/kill").catch(() => null);

    await t.step("--allow-run names both scripts' real paths and kill", () => {
      const run = valueOf("--allow-run");
      assert.ok(run.includes(`${world.hooks}/push-myapp-main`), run.join());
      assert.ok(
        run.includes(`${world.hooks}/push-myapp-feature/x`),
        run.join(),
      );
      assert.ok(run.some((p) => /\/kill$/.test(p)), run.join());
      if (kill !== null) assert.ok(run.includes(kill));
      assert.equal(run.length, 3);
      assert.ok(!flags.includes("--allow-run"), "no blanket --allow-run");
      assert.ok(valueOf("--allow-read").includes(world.hooks));
      assert.ok(valueOf("--allow-write").includes("/tmp"));
    });

    const url = `http://127.0.0.1:${port}`;
    let server: Awaited<ReturnType<typeof startUnderFlags>> | undefined;
    try {
      server = await startUnderFlags(flags, world.cwd, env);
      await t.step("a push to main runs push-myapp-main", async () => {
        const id = await post(url, "push", pushBody("main"));
        const record = await settled(url, id);
        assert.equal(record.status, "done", record.error ?? "");
        assert.equal(
          (await Deno.readTextFile(`${world.out}/main`)).trim(),
          id,
        );
      });

      await t.step(
        "a hung script in the sub-folder: its group is killed through kill",
        async () => {
          const id = await post(url, "push", pushBody("feature/x"));
          const pids = await readPids(pidsFile, 2);
          for (const pid of pids) assert.ok(await isRunning(pid), "it started");
          const record = await settled(url, id);
          assert.equal(record.status, "dead");
          assert.match(record.error ?? "", /timed out/);
          assert.equal(scriptRuns(record)[0]?.handler, "push-myapp-feature/x");
          assert.equal(scriptRuns(record)[0]?.signal, "SIGKILL");
          await waitFor(
            async () => {
              for (const pid of pids) if (await isRunning(pid)) return false;
              return true;
            },
            5000,
            "the script and its child to be gone",
          );
          assert.ok(
            !server!.lines.some((l) =>
              l.includes("cannot signal a hook script")
            ),
            "no leader-only fallback",
          );
        },
      );
    } finally {
      const status = server ? await server.stop() : null;
      await Deno.remove(world.root, { recursive: true });
      if (status) assert.equal(status.code, 0);
    }
  },
});

Deno.test({
  name:
    "with TMPDIR set, the server starts under exactly the flags deno task flags printed",
  async fn() {
    const world = await makeWorld();
    await writeScript(`${world.hooks}/push`, `echo ok > '${world.out}/ran'`);
    const port = freePort();
    const env = {
      ...inheritedEnv(),
      TMPDIR: world.tmp,
      GITHUB_WEBHOOK_SECRET: SECRET,
      ADMIN_TOKEN,
      HOOKS_DIR: world.hooks,
      IP_ALLOWLIST: "off",
      HOST: "127.0.0.1",
      PORT: String(port),
      LOG_FORMAT: "json",
    };
    const url = `http://127.0.0.1:${port}`;
    let server: Awaited<ReturnType<typeof startUnderFlags>> | undefined;
    try {
      server = await startUnderFlags(
        await taskFlags(world.cwd, env),
        world.cwd,
        env,
      );
      const record = await settled(
        url,
        await post(url, "push", pushBody("main")),
      );
      assert.equal(record.status, "done", record.error ?? "");
      assert.equal(await Deno.readTextFile(`${world.out}/ran`), "ok\n");
    } finally {
      const status = server ? await server.stop() : null;
      await Deno.remove(world.root, { recursive: true });
      if (status) assert.equal(status.code, 0);
    }
  },
});
