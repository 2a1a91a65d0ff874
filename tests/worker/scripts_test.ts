// Hook scripts: candidates, lookup, environment, and real /bin/sh scripts
// run in temp folders (argv, stdin, cwd, output, timeouts, process groups).

import assert from "node:assert/strict";
import {
  createOutputRing,
  createScriptRunner,
  findScripts,
  killGroup,
  runScript,
  scriptCandidates,
  scriptEnv,
  type ScriptJob,
  type ScriptRun,
  type ScriptsOptions,
} from "../../lib/worker/scripts.ts";
import { captureLogger, waitFor } from "../_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const SHA = "6dcb09b5b57875f334f61aebed695e2e4193db5e";
const MODULE = new URL("../../lib/worker/scripts.ts", import.meta.url).href;
const LOG_MODULE = new URL("../../lib/ops/log.ts", import.meta.url).href;

const PUSH = {
  ref: "refs/heads/main",
  after: SHA,
  repository: { name: "myapp", full_name: "octo/myapp" },
  sender: { login: "octocat" },
};

function jobOf(
  payload: Record<string, unknown> = PUSH,
  init: Partial<ScriptJob> = {},
): ScriptJob {
  return {
    event: "push",
    action: undefined,
    delivery: "d-1",
    attempt: 1,
    json: encoder.encode(JSON.stringify(payload)),
    payload,
    ...init,
  };
}

/** A fresh HOOKS_DIR (real path) and a fresh temp dir for payload files. */
async function folders(): Promise<{ dir: string; tmp: string }> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "hooks-" }));
  const tmp = await Deno.makeTempDir({ prefix: "hooks-tmp-" });
  return { dir, tmp };
}

async function removeAll(...paths: string[]): Promise<void> {
  for (const path of paths) {
    await Deno.remove(path, { recursive: true }).catch(() => {});
  }
}

/** Writes an executable `#!/bin/sh` script at `dir/name` (sub-folders made). */
async function script(
  dir: string,
  name: string,
  body: string,
): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(path, `#!/bin/sh\n${body}\n`);
  await Deno.chmod(path, 0o755);
  return path;
}

function optionsOf(
  dir: string,
  tmp: string,
  extra: Partial<ScriptsOptions> = {},
): ScriptsOptions {
  return {
    dir,
    baseEnv: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: "/nowhere",
    },
    timeoutMs: 10_000,
    killGraceMs: 300,
    tempDir: tmp,
    ...extra,
  };
}

async function entries(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Pids (not zombies) in process group `pgid`. */
async function groupMembers(pgid: number): Promise<number[]> {
  const { stdout } = await new Deno.Command("ps", {
    args: ["-eo", "pid=,pgid=,stat="],
    stdout: "piped",
  }).output();
  return decoder.decode(stdout).split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter(([, g, stat]) => Number(g) === pgid && !stat?.startsWith("Z"))
    .map(([pid]) => Number(pid));
}

/** Whether `pid` is a live (not zombie) process. */
async function alive(pid: number): Promise<boolean> {
  const { stdout } = await new Deno.Command("ps", {
    args: ["-o", "stat=", "-p", String(pid)],
    stdout: "piped",
  }).output();
  const stat = decoder.decode(stdout).trim();
  return stat !== "" && !stat.startsWith("Z");
}

async function pidsIn(path: string): Promise<number[]> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.split(/\s+/).filter((s) => s !== "").map(Number);
}

/** Kills leftovers of a failed test so nothing outlives the suite. */
function killQuietly(pids: number[]): void {
  for (const pid of pids) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

async function assertAllGone(pids: number[], pgid?: number): Promise<void> {
  await waitFor(
    async () => {
      for (const pid of pids) if (await alive(pid)) return false;
      return pgid === undefined || (await groupMembers(pgid)).length === 0;
    },
    3000,
    `processes ${pids.join(", ")} to be gone`,
  );
}

function text(run: ScriptRun): string {
  return decoder.decode(run.output);
}

const never = new AbortController().signal;

Deno.test("scriptCandidates() names the contract's candidates in order", async (t) => {
  const repo = { name: "myapp", full_name: "octo/myapp" };
  const rows: [string, string, unknown, string[]][] = [
    ["push to main", "push", { ref: "refs/heads/main", repository: repo }, [
      "push-myapp-main",
      "push-myapp",
      "push",
      "all",
    ]],
    ["a branch with a slash is a sub-folder", "push", {
      ref: "refs/heads/feature/x",
      repository: repo,
    }, ["push-myapp-feature/x", "push-myapp", "push", "all"]],
    ["a tag push has no branch", "push", {
      ref: "refs/tags/v1.0",
      repository: repo,
    }, ["push-myapp", "push", "all"]],
    ["a pull request's base branch", "pull_request", {
      action: "opened",
      pull_request: { base: { ref: "release" }, head: { ref: "topic" } },
      repository: repo,
    }, [
      "pull_request-myapp-release",
      "pull_request-myapp",
      "pull_request",
      "all",
    ]],
    ["create of a branch", "create", {
      ref: "dev",
      ref_type: "branch",
      repository: repo,
    }, ["create-myapp-dev", "create-myapp", "create", "all"]],
    ["delete of a branch", "delete", {
      ref: "old",
      ref_type: "branch",
      repository: repo,
    }, ["delete-myapp-old", "delete-myapp", "delete", "all"]],
    ["create of a tag", "create", {
      ref: "v2",
      ref_type: "tag",
      repository: repo,
    }, ["create-myapp", "create", "all"]],
    ["a branch with ..", "push", {
      ref: "refs/heads/../../etc",
      repository: repo,
    }, ["push-myapp", "push", "all"]],
    ["a branch ending in ..", "push", {
      ref: "refs/heads/a/..",
      repository: repo,
    }, ["push-myapp", "push", "all"]],
    ["a branch with a newline", "push", {
      ref: "refs/heads/ma\nin",
      repository: repo,
    }, ["push-myapp", "push", "all"]],
    ["a branch with a NUL", "push", {
      ref: "refs/heads/ma\u0000in",
      repository: repo,
    }, ["push-myapp", "push", "all"]],
    ["a branch segment longer than a file name", "push", {
      ref: `refs/heads/${"b".repeat(250)}`,
      repository: repo,
    }, ["push-myapp", "push", "all"]],
    ["no repository", "push", { ref: "refs/heads/main" }, ["push", "all"]],
    ["an unsafe repository name", "push", {
      ref: "refs/heads/main",
      repository: { name: "../x" },
    }, ["push", "all"]],
    ["a repository named ..", "push", {
      ref: "refs/heads/main",
      repository: { name: ".." },
    }, ["push", "all"]],
    ["an unsafe event", "../push", PUSH, ["all"]],
    ["an event named .", ".", PUSH, ["all"]],
    ["a payload that is not an object", "ping", null, ["ping", "all"]],
  ];
  for (const [name, event, payload, expected] of rows) {
    await t.step(name, () => {
      assert.deepEqual(scriptCandidates(event, payload), expected);
    });
  }
});

Deno.test("createOutputRing() keeps the last bytes however they arrive", async (t) => {
  const bytes = (s: string) => encoder.encode(s);
  const read = (ring: ReturnType<typeof createOutputRing>) =>
    decoder.decode(ring.bytes());
  await t.step("under the capacity", () => {
    const ring = createOutputRing(8);
    ring.push(bytes("ab"));
    ring.push(bytes("cd"));
    assert.equal(read(ring), "abcd");
  });
  await t.step("wrapping around, many times", () => {
    const ring = createOutputRing(5);
    let all = "";
    for (let i = 0; i < 40; i++) {
      const chunk = "xyz0123456789".slice(0, 1 + (i % 7)) + i;
      all += chunk;
      ring.push(bytes(chunk));
      assert.equal(read(ring), all.slice(-5));
    }
  });
  await t.step("one chunk bigger than the capacity", () => {
    const ring = createOutputRing(4);
    ring.push(bytes("ab"));
    ring.push(bytes("0123456789"));
    assert.equal(read(ring), "6789");
    ring.push(bytes("X"));
    assert.equal(read(ring), "789X");
  });
  await t.step("a capacity of zero keeps nothing", () => {
    const ring = createOutputRing(0);
    ring.push(bytes("abc"));
    assert.equal(ring.bytes().length, 0);
  });
});

Deno.test("scriptEnv() sets every HOOKGATE_ variable, and GITHUB_TOKEN only when given", () => {
  const base = { PATH: "/usr/bin", HOME: "/home/h", DEPLOY_HOST: "box" };
  const job = jobOf(
    { ...PUSH, ref: "refs/heads/feature/x" },
    { action: "done", attempt: 3 },
  );
  assert.deepEqual(scriptEnv(base, job, "ghs_abc"), {
    ...base,
    HOOKGATE_EVENT: "push",
    HOOKGATE_ACTION: "done",
    HOOKGATE_DELIVERY: "d-1",
    HOOKGATE_ATTEMPT: "3",
    HOOKGATE_REPOSITORY: "octo/myapp",
    HOOKGATE_BRANCH: "feature/x",
    HOOKGATE_SHA: SHA,
    HOOKGATE_SENDER: "octocat",
    GITHUB_TOKEN: "ghs_abc",
  });
  const bare = scriptEnv({ PATH: "/bin", GITHUB_TOKEN: "stale" }, {
    ...jobOf({}),
    event: "ping",
  }, undefined);
  assert.deepEqual(bare, {
    PATH: "/bin",
    HOOKGATE_EVENT: "ping",
    HOOKGATE_ACTION: "",
    HOOKGATE_DELIVERY: "d-1",
    HOOKGATE_ATTEMPT: "1",
    HOOKGATE_REPOSITORY: "",
    HOOKGATE_BRANCH: "",
    HOOKGATE_SHA: "",
    HOOKGATE_SENDER: "",
  });
});

Deno.test("scriptEnv() leaves out an unsafe branch and text with control characters", () => {
  const payload = {
    ref: "refs/heads/../../etc",
    repository: { full_name: "octo/a\u0000b" },
    sender: { login: "x\ny" },
  };
  const env = scriptEnv({}, jobOf(payload), undefined);
  assert.equal(env.HOOKGATE_BRANCH, "");
  assert.equal(env.HOOKGATE_REPOSITORY, "");
  assert.equal(env.HOOKGATE_SENDER, "");
});

Deno.test("findScripts() keeps runnable scripts inside HOOKS_DIR and says why it skips the others", async () => {
  const { dir, tmp } = await folders();
  const outside = await Deno.realPath(await Deno.makeTempDir());
  try {
    await Deno.mkdir(`${dir}/push-myapp-main`);
    await Deno.writeTextFile(`${dir}/push-myapp`, "#!/bin/sh\n");
    await script(outside, "evil.sh", "exit 0");
    await script(outside, "x", "exit 0");
    await Deno.symlink(`${outside}/evil.sh`, `${dir}/push`);
    const inside = await script(dir, "lib/all.sh", "exit 0");
    await Deno.symlink("lib/all.sh", `${dir}/all`);
    await Deno.symlink("/nonexistent/hook", `${dir}/issues`);
    await Deno.symlink(outside, `${dir}/push-myapp-feature`);
    await script(dir, "push-other-main/x", "exit 0");
    await Deno.writeTextFile(`${dir}/file`, "");

    const { log, lines } = captureLogger();
    const found = await findScripts(dir, [
      "push-myapp-main",
      "push-myapp",
      "push",
      "all",
      "issues",
      "push-myapp-feature/x",
      "missing",
      "file/x",
    ], log);
    assert.deepEqual(found, [{ handler: "all", path: inside }]);
    const skipped = lines.map((l) => [l.handler, l.reason]);
    assert.deepEqual(skipped, [
      ["push-myapp-main", "it is not a regular file"],
      ["push-myapp", "it is not executable"],
      ["push", "it resolves outside HOOKS_DIR"],
      ["issues", "it is a broken symlink"],
      ["push-myapp-feature/x", "it resolves outside HOOKS_DIR"],
    ]);
    assert.ok(lines.every((l) => l.level === "warn"));
  } finally {
    await removeAll(dir, tmp, outside);
  }
});

Deno.test("findScripts() resolves HOOKS_DIR through a symlink and gives no scripts for a missing one", async () => {
  const { dir, tmp } = await folders();
  try {
    const path = await script(dir, "push", "exit 0");
    await Deno.symlink(dir, `${tmp}/link`);
    assert.deepEqual(await findScripts(`${tmp}/link`, ["push", "all"]), [
      { handler: "push", path },
    ]);
    const { log, lines } = captureLogger();
    assert.deepEqual(await findScripts(`${tmp}/none`, ["push"], log), []);
    assert.equal(lines[0]?.msg, "HOOKS_DIR cannot be read");
  } finally {
    await removeAll(dir, tmp);
  }
});

Deno.test("a script gets argv [payload file, event], the payload on stdin, HOOKS_DIR as cwd and exactly its environment", async () => {
  const { dir, tmp } = await folders();
  const saved = {
    secret: Deno.env.get("GITHUB_WEBHOOK_SECRET"),
    admin: Deno.env.get("ADMIN_TOKEN"),
  };
  Deno.env.set("GITHUB_WEBHOOK_SECRET", "It's a Secret to Everybody");
  Deno.env.set("ADMIN_TOKEN", "admin-token-0123456789");
  try {
    await script(
      dir,
      "push-myapp-feature/x",
      [
        `out=${dir}/out`,
        'mkdir -p "$out"',
        `tr '\\0' '\\n' < /proc/$$/environ > "$out/env"`,
        'cat "$1" > "$out/arg1"',
        `printf '%s' "$1" > "$out/arg1.path"`,
        `printf '%s' "$2" > "$out/arg2"`,
        `printf '%s' "$#" > "$out/argc"`,
        'cat > "$out/stdin"',
        'pwd -P > "$out/pwd"',
      ].join("\n"),
    );
    await Deno.symlink(dir, `${tmp}/hooks-link`);
    const payload = { ...PUSH, ref: "refs/heads/feature/x" };
    const job = jobOf(payload, { attempt: 2, delivery: "guid-9" });
    const runner = createScriptRunner(optionsOf(`${tmp}/hooks-link`, tmp, {
      baseEnv: {
        PATH: "/usr/bin:/bin",
        HOME: "/home/deploy",
        DEPLOY_HOST: "box",
      },
    }));
    const runs = await runner.run(job, "ghs_installation", never);
    assert.equal(runs.length, 1);
    assert.equal(runs[0]?.handler, "push-myapp-feature/x");
    assert.equal(runs[0]?.ok, true, runs[0]?.error);
    assert.equal(runs[0]?.exitCode, 0);

    const out = `${dir}/out`;
    const env: Record<string, string> = Object.fromEntries(
      (await Deno.readTextFile(`${out}/env`)).split("\n").filter((l) => l)
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    assert.equal(env.GITHUB_WEBHOOK_SECRET, undefined);
    assert.equal(env.ADMIN_TOKEN, undefined);
    assert.deepEqual(env, {
      PATH: "/usr/bin:/bin",
      HOME: "/home/deploy",
      DEPLOY_HOST: "box",
      HOOKGATE_EVENT: "push",
      HOOKGATE_ACTION: "",
      HOOKGATE_DELIVERY: "guid-9",
      HOOKGATE_ATTEMPT: "2",
      HOOKGATE_REPOSITORY: "octo/myapp",
      HOOKGATE_BRANCH: "feature/x",
      HOOKGATE_SHA: SHA,
      HOOKGATE_SENDER: "octocat",
      GITHUB_TOKEN: "ghs_installation",
    });
    assert.deepEqual(await Deno.readFile(`${out}/arg1`), job.json);
    assert.deepEqual(await Deno.readFile(`${out}/stdin`), job.json);
    assert.equal(await Deno.readTextFile(`${out}/arg2`), "push");
    assert.equal(await Deno.readTextFile(`${out}/argc`), "2");
    assert.equal((await Deno.readTextFile(`${out}/pwd`)).trim(), dir);
    const file = await Deno.readTextFile(`${out}/arg1.path`);
    const realTmp = await Deno.realPath(tmp);
    assert.match(file, /\/hookgate-[^/]*\.json$/);
    assert.ok(file.startsWith(`${realTmp}/`) || file.startsWith(`${tmp}/`));
    assert.equal(await exists(file), false, "the payload file is removed");
    assert.deepEqual(await entries(tmp), ["hooks-link"]);
  } finally {
    for (
      const [name, value] of [
        ["GITHUB_WEBHOOK_SECRET", saved.secret],
        ["ADMIN_TOKEN", saved.admin],
      ] as const
    ) {
      if (value === undefined) Deno.env.delete(name);
      else Deno.env.set(name, value);
    }
    await removeAll(dir, tmp);
  }
});

Deno.test("runScript() reports a non-zero exit with its output, and removes the payload file", async () => {
  const { dir, tmp } = await folders();
  try {
    const path = await script(
      dir,
      "push",
      'echo "$1" > used; echo failing; echo why >&2; exit 3',
    );
    const job = jobOf();
    const run = await runScript(
      path,
      "push",
      job,
      {},
      optionsOf(dir, tmp),
      never,
    );
    assert.equal(run.ok, false);
    assert.equal(run.exitCode, 3);
    assert.equal(run.signal, null);
    assert.equal(run.timedOut, false);
    assert.equal(run.error, "exit status 3");
    assert.match(text(run), /failing\n/);
    assert.match(text(run), /why\n/);
    assert.equal(
      await exists((await Deno.readTextFile(`${dir}/used`)).trim()),
      false,
    );
    assert.deepEqual(await entries(tmp), []);
  } finally {
    await removeAll(dir, tmp);
  }
});

Deno.test("runScript() reports a script killed by a signal", async () => {
  const { dir, tmp } = await folders();
  try {
    const path = await script(dir, "push", "kill -USR1 $$; sleep 5");
    const run = await runScript(
      path,
      "push",
      jobOf(),
      {},
      optionsOf(dir, tmp),
      never,
    );
    assert.equal(run.ok, false);
    assert.equal(run.exitCode, null);
    assert.equal(run.signal, "SIGUSR1");
    assert.equal(run.error, "killed by SIGUSR1");
    assert.deepEqual(await entries(tmp), []);
  } finally {
    await removeAll(dir, tmp);
  }
});

Deno.test("runScript() keeps stdout and stderr in the order they were written", async () => {
  const { dir, tmp } = await folders();
  try {
    const path = await script(
      dir,
      "push",
      "printf a; sleep 0.2; printf b >&2; sleep 0.2; printf c",
    );
    const run = await runScript(
      path,
      "push",
      jobOf(),
      {},
      optionsOf(dir, tmp),
      never,
    );
    assert.equal(run.ok, true);
    assert.equal(text(run), "abc");
  } finally {
    await removeAll(dir, tmp);
  }
});

Deno.test("runScript() at the timeout kills the whole group, children ignoring SIGTERM included", async () => {
  const { dir, tmp } = await folders();
  const pidFile = `${dir}/pids`;
  try {
    const path = await script(
      dir,
      "push",
      `echo $$ >> ${pidFile}; trap '' TERM; sleep 30 & echo $! >> ${pidFile}; sleep 30; wait`,
    );
    const options = optionsOf(dir, tmp, { timeoutMs: 300, killGraceMs: 300 });
    const run = await runScript(path, "push", jobOf(), {}, options, never);
    const pids = await pidsIn(pidFile);
    try {
      assert.equal(run.ok, false);
      assert.equal(run.timedOut, true);
      assert.equal(run.error, "timed out after 300 ms");
      assert.equal(run.signal, "SIGKILL");
      assert.equal(run.exitCode, null);
      assert.ok(run.ms >= 600, `SIGKILL only after the grace: ${run.ms} ms`);
      assert.ok(
        run.ms < 600 + 2500,
        `ended soon after the grace: ${run.ms} ms`,
      );
      assert.equal(pids.length, 2);
      await assertAllGone(pids, pids[0]);
      assert.deepEqual(await entries(tmp), []);
    } finally {
      killQuietly(pids);
    }
  } finally {
    await removeAll(dir, tmp);
  }
});

Deno.test("runScript() at the timeout sends SIGTERM first and SIGKILL after the grace", async () => {
  const { dir, tmp } = await folders();
  try {
    const path = await script(
      dir,
      "push",
      "trap 'echo got-term' TERM; while :; do sleep 0.05; done",
    );
    const options = optionsOf(dir, tmp, { timeoutMs: 200, killGraceMs: 400 });
    const run = await runScript(path, "push", jobOf(), {}, options, never);
    assert.equal(run.timedOut, true);
    assert.equal(run.signal, "SIGKILL");
    assert.match(text(run), /got-term/);
  } finally {
    await removeAll(dir, tmp);
  }
});

Deno.test("runScript() leaves no background child behind a script that exits 0", async () => {
  const { dir, tmp } = await folders();
  const pidFile = `${dir}/pid`;
  try {
    const path = await script(
      dir,
      "push",
      `sleep 1000 & echo $! > ${pidFile}; echo started; exit 0`,
    );
    const run = await runScript(
      path,
      "push",
      jobOf(),
      {},
      optionsOf(dir, tmp),
      never,
    );
    const pids = await pidsIn(pidFile);
    try {
      assert.equal(run.ok, true, run.error);
      assert.equal(text(run), "started\n");
      assert.equal(pids.length, 1);
      await assertAllGone(pids);
    } finally {
      killQuietly(pids);
    }
  } finally {
    await removeAll(dir, tmp);
  }
});

Deno.test("runScript() keeps the last 64 KiB of a flood of output", async () => {
  const { dir, tmp } = await folders();
  try {
    const path = await script(
      dir,
      "push",
      "head -c 50000000 /dev/zero; yes | head -c 3000000; printf THE-END",
    );
    const run = await runScript(
      path,
      "push",
      jobOf(),
      {},
      optionsOf(dir, tmp),
      never,
    );
    assert.equal(run.ok, true, run.error);
    assert.equal(run.output.length, 65_536);
    assert.equal(decoder.decode(run.output.subarray(-7)), "THE-END");
    const before = decoder.decode(run.output.subarray(0, -7));
    assert.equal(before, "y\n".repeat(40_000).slice(-before.length));

    const stderr = await script(dir, "all", "yes | head -c 20000000 >&2");
    const flood = await runScript(
      stderr,
      "all",
      jobOf(),
      {},
      optionsOf(dir, tmp),
      never,
    );
    assert.equal(flood.ok, true, flood.error);
    assert.equal(flood.output.length, 65_536);

    const small = await runScript(
      path,
      "push",
      jobOf(),
      {},
      optionsOf(dir, tmp, { outputMax: 10 }),
      never,
    );
    assert.equal(decoder.decode(small.output), "\ny\nTHE-END");
    assert.deepEqual(await entries(tmp), []);
  } finally {
    await removeAll(dir, tmp);
  }
});

Deno.test("runScript() does not need the script to read stdin", async (t) => {
  const { dir, tmp } = await folders();
  const big = jobOf({ ...PUSH, blob: "x".repeat(1 << 20) });
  assert.ok(big.json.length > 1 << 20);
  try {
    for (
      const [name, body] of [
        ["never reading, exit 0", "exit 0"],
        ["reading a little, then exit 0", "head -c 10 > /dev/null; exit 0"],
        ["never reading, sleeping first", "sleep 0.2; exit 0"],
        ["closing stdin first", "exec 0<&-; sleep 0.1; echo closed"],
      ] as [string, string][]
    ) {
      await t.step(name, async () => {
        const path = await script(dir, "push", body);
        const run = await runScript(
          path,
          "push",
          big,
          {},
          optionsOf(dir, tmp),
          never,
        );
        assert.equal(run.ok, true, run.error);
        assert.deepEqual(await entries(tmp), []);
      });
    }
    await t.step("reading all of it", async () => {
      const path = await script(dir, "push", "wc -c");
      const run = await runScript(
        path,
        "push",
        big,
        {},
        optionsOf(dir, tmp),
        never,
      );
      assert.equal(text(run).trim(), String(big.json.length));
    });
  } finally {
    await removeAll(dir, tmp);
  }
});

Deno.test("runScript() kills the group when its signal aborts", async () => {
  const { dir, tmp } = await folders();
  const pidFile = `${dir}/pids`;
  try {
    const path = await script(
      dir,
      "push",
      `sleep 30 & echo $! >> ${pidFile}; echo $$ >> ${pidFile}; wait`,
    );
    const stop = new AbortController();
    const running = runScript(
      path,
      "push",
      jobOf(),
      {},
      optionsOf(dir, tmp),
      stop.signal,
    );
    const pids = await waitFor(async () => {
      const pids = await pidsIn(pidFile);
      return pids.length === 2 ? pids : null;
    });
    try {
      stop.abort();
      const run = await running;
      assert.equal(run.ok, false);
      assert.equal(run.timedOut, false);
      assert.equal(run.signal, "SIGTERM");
      assert.equal(run.error, "interrupted by shutdown: killed by SIGTERM");
      await assertAllGone(pids, pids[1]);
      assert.deepEqual(await entries(tmp), []);
      const late = await runScript(
        path,
        "push",
        jobOf(),
        {},
        optionsOf(dir, tmp),
        stop.signal,
      );
      assert.equal(late.error, "not started: shutting down");
    } finally {
      killQuietly(pids);
    }
  } finally {
    await removeAll(dir, tmp);
  }
});

Deno.test("runScript() reports a script that cannot start, and never rejects", async (t) => {
  const { dir, tmp } = await folders();
  try {
    await t.step("a missing interpreter", async () => {
      const path = `${dir}/push`;
      await Deno.writeTextFile(path, "#!/nonexistent/interpreter\n");
      await Deno.chmod(path, 0o755);
      const run = await runScript(
        path,
        "push",
        jobOf(),
        {},
        optionsOf(dir, tmp),
        never,
      );
      assert.equal(run.ok, false);
      assert.equal(run.exitCode, null);
      assert.match(run.error ?? "", /^could not start: NotFound: /);
      assert.deepEqual(await entries(tmp), []);
    });
    await t.step("a file without an execute bit", async () => {
      const path = `${dir}/plain`;
      await Deno.writeTextFile(path, "#!/bin/sh\n");
      const run = await runScript(
        path,
        "plain",
        jobOf(),
        {},
        optionsOf(dir, tmp),
        never,
      );
      assert.match(run.error ?? "", /^could not start: PermissionDenied: /);
      assert.deepEqual(await entries(tmp), []);
    });
    await t.step("a temp dir that does not exist", async () => {
      const path = await script(dir, "all", "exit 0");
      const options = optionsOf(dir, `${tmp}/none`);
      const run = await runScript(path, "all", jobOf(), {}, options, never);
      assert.match(
        run.error ?? "",
        /^could not start: cannot write the payload file: /,
      );
    });
    await t.step("a HOOKS_DIR that does not exist", async () => {
      const path = await script(dir, "all", "exit 0");
      const options = optionsOf(`${dir}/none`, tmp);
      const run = await runScript(path, "all", jobOf(), {}, options, never);
      assert.match(
        run.error ?? "",
        /^could not start: HOOKS_DIR cannot be read: /,
      );
    });
  } finally {
    await removeAll(dir, tmp);
  }
});

Deno.test("runScript() stops reading output held open by a process that left the group", async () => {
  const { dir, tmp } = await folders();
  const pidFile = `${dir}/pid`;
  try {
    const path = await script(
      dir,
      "push",
      [
        `setsid sh -c 'echo $$ > ${pidFile}; exec sleep 30' &`,
        `while [ ! -s ${pidFile} ]; do sleep 0.01; done`,
        "echo hi; exit 0",
      ].join("\n"),
    );
    const { log, lines } = captureLogger();
    const options = optionsOf(dir, tmp, { log });
    const run = await runScript(path, "push", jobOf(), {}, options, never);
    const pids = await pidsIn(pidFile);
    killQuietly(pids);
    assert.equal(run.ok, true, run.error);
    assert.equal(text(run), "hi\n");
    assert.equal(
      lines[0]?.msg,
      "a process outside the script's group holds its stdin or output open",
    );
    assert.deepEqual(await entries(tmp), []);
  } finally {
    await removeAll(dir, tmp);
  }
});

Deno.test("createScriptRunner() runs the candidates in order and stops at the first failure", async () => {
  const { dir, tmp } = await folders();
  const trail = `${dir}/trail`;
  try {
    await script(dir, "push-myapp-main", `echo main >> ${trail}`);
    await script(dir, "push-myapp", `echo myapp >> ${trail}; exit 1`);
    await script(dir, "push", `echo push >> ${trail}`);
    await script(dir, "all", `echo all >> ${trail}`);
    const runner = createScriptRunner(optionsOf(dir, tmp));
    const runs = await runner.run(jobOf(), undefined, never);
    assert.deepEqual(runs.map((r) => [r.handler, r.ok]), [
      ["push-myapp-main", true],
      ["push-myapp", false],
    ]);
    assert.equal(runs[1]?.error, "exit status 1");
    assert.equal(await Deno.readTextFile(trail), "main\nmyapp\n");

    await script(dir, "push-myapp", `echo myapp >> ${trail}`);
    await Deno.remove(trail);
    const again = await runner.run(jobOf(), undefined, never);
    assert.deepEqual(again.map((r) => r.handler), [
      "push-myapp-main",
      "push-myapp",
      "push",
      "all",
    ]);
    assert.ok(again.every((r) => r.ok));
    assert.equal(await Deno.readTextFile(trail), "main\nmyapp\npush\nall\n");
    assert.equal(runner.active, 0);
    assert.deepEqual(await entries(tmp), []);
  } finally {
    await removeAll(dir, tmp);
  }
});

Deno.test("createScriptRunner() looks scripts up for every delivery", async () => {
  const { dir, tmp } = await folders();
  try {
    const runner = createScriptRunner(optionsOf(dir, tmp));
    assert.deepEqual(await runner.run(jobOf(), undefined, never), []);
    await script(dir, "push", "echo added");
    const runs = await runner.run(jobOf(), undefined, never);
    assert.deepEqual(runs.map((r) => [r.handler, text(r)]), [[
      "push",
      "added\n",
    ]]);
    await Deno.remove(`${dir}/push`);
    assert.deepEqual(await runner.run(jobOf(), undefined, never), []);
  } finally {
    await removeAll(dir, tmp);
  }
});

Deno.test("createScriptRunner() fails the attempt when HOOKS_DIR cannot be read", async () => {
  const { dir, tmp } = await folders();
  try {
    const runner = createScriptRunner(optionsOf(`${dir}/missing`, tmp));
    const runs = await runner.run(jobOf(), undefined, never);
    assert.equal(runs.length, 1);
    assert.equal(runs[0]?.handler, "(hooks-dir)");
    assert.equal(runs[0]?.ok, false);
    assert.match(runs[0]?.error ?? "", /^HOOKS_DIR cannot be read: NotFound/);
  } finally {
    await removeAll(dir, tmp);
  }
});

Deno.test("createScriptRunner() close() kills the running scripts and starts no more", async () => {
  const { dir, tmp } = await folders();
  const pidFile = `${dir}/pids`;
  try {
    await script(
      dir,
      "push",
      `trap '' TERM; sleep 30 & echo $! >> ${pidFile}; echo $$ >> ${pidFile}; wait`,
    );
    await script(dir, "all", `echo all >> ${dir}/trail`);
    const runner = createScriptRunner(optionsOf(dir, tmp));
    const running = runner.run(jobOf(), undefined, never);
    const pids = await waitFor(async () => {
      const pids = await pidsIn(pidFile);
      return pids.length === 2 ? pids : null;
    });
    try {
      assert.equal(runner.active, 1);
      await runner.close();
      assert.equal(runner.active, 0);
      const runs = await running;
      assert.deepEqual(runs.map((r) => [r.handler, r.ok, r.signal]), [
        ["push", false, "SIGKILL"],
      ]);
      assert.match(runs[0]?.error ?? "", /^interrupted by shutdown/);
      await assertAllGone(pids, pids[1]);
      assert.equal(await exists(`${dir}/trail`), false);
      const late = await runner.run(jobOf(), undefined, never);
      assert.deepEqual(late.map((r) => [r.handler, r.error]), [
        ["push", "not started: shutting down"],
      ]);
      assert.deepEqual(await entries(tmp), []);
    } finally {
      killQuietly(pids);
    }
  } finally {
    await removeAll(dir, tmp);
  }
});

Deno.test("killGroup() refuses pids that are not a process group of ours", async () => {
  for (const pid of [0, 1, -1, -42, 1.5, Number.NaN]) {
    await assert.rejects(() => killGroup(pid, "SIGTERM"), RangeError);
  }
  const child = new Deno.Command("/bin/true", { detached: true }).spawn();
  await child.status;
  assert.equal(await killGroup(child.pid, "SIGKILL", child), "gone");
});

Deno.test("runScript() does not wait for stdin held open by a process that left the group", async () => {
  const { dir, tmp } = await folders();
  const pidFile = `${dir}/pid`;
  try {
    const path = await script(
      dir,
      "push",
      [
        "exec 3<&0",
        `setsid sh -c 'echo $$ > ${pidFile}; exec sleep 30 >/dev/null 2>&1' <&3 &`,
        `while [ ! -s ${pidFile} ]; do sleep 0.01; done`,
        "exit 0",
      ].join("\n"),
    );
    const big = jobOf({ ...PUSH, blob: "x".repeat(1 << 20) });
    const run = await runScript(
      path,
      "push",
      big,
      {},
      optionsOf(dir, tmp),
      never,
    );
    const pids = await pidsIn(pidFile);
    killQuietly(pids);
    assert.equal(run.ok, true, run.error);
    assert.equal(pids.length, 1);
    await assertAllGone(pids);
    assert.deepEqual(await entries(tmp), []);
  } finally {
    await removeAll(dir, tmp);
  }
});

/** Runs the runner twice for a push in a Deno with `--allow-run=<allowRun>`. */
async function underNarrowRun(
  dir: string,
  tmp: string,
  allowRun: string,
): Promise<
  { runs: (ScriptRun & { output: string })[]; lines: Record<string, unknown>[] }
> {
  const probe = `${tmp}/probe.ts`;
  await Deno.writeTextFile(
    probe,
    `import { createScriptRunner } from ${JSON.stringify(MODULE)};
import { createLogger } from ${JSON.stringify(LOG_MODULE)};
const [dir, tmp] = Deno.args;
const lines = [];
const log = createLogger({ level: "debug", write: (l) => lines.push(JSON.parse(l)) });
const runner = createScriptRunner({ dir, baseEnv: { PATH: "/usr/bin:/bin" }, timeoutMs: 300, killGraceMs: 300, tempDir: tmp, log });
const payload = { ref: "refs/heads/main", repository: { name: "myapp" } };
const job = { event: "push", action: undefined, delivery: "d", attempt: 1, json: new TextEncoder().encode(JSON.stringify(payload)), payload };
const runs = [];
for (let i = 0; i < 2; i++) runs.push(...await runner.run(job, undefined, new AbortController().signal));
console.log(JSON.stringify({ runs: runs.map((r) => ({ ...r, output: new TextDecoder().decode(r.output) })), lines }));
`,
  );
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      "--allow-read",
      "--allow-write",
      `--allow-run=${allowRun}`,
      probe,
      dir,
      `${tmp}/files`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, decoder.decode(stderr));
  return JSON.parse(decoder.decode(stdout));
}

Deno.test("under a narrow --allow-run a script that is not listed is reported, not run", async () => {
  const { dir, tmp } = await folders();
  try {
    await script(dir, "push", `echo ran >> ${dir}/trail`);
    await Deno.mkdir(`${tmp}/files`);
    const { runs } = await underNarrowRun(dir, tmp, "/bin/true");
    assert.deepEqual(runs.map((r) => [r.handler, r.ok, r.error]), [
      [
        "push",
        false,
        "not allowed to run: add it to --allow-run (deno task flags prints the flags)",
      ],
      [
        "push",
        false,
        "not allowed to run: add it to --allow-run (deno task flags prints the flags)",
      ],
    ]);
    assert.equal(await exists(`${dir}/trail`), false);
    assert.deepEqual(await entries(`${tmp}/files`), []);
  } finally {
    await removeAll(dir, tmp);
  }
});

Deno.test("under --allow-run=<script>,kill the group is still killed, through the kill binary", async () => {
  const { dir, tmp } = await folders();
  const pidFile = `${dir}/pids`;
  try {
    const path = await script(
      dir,
      "push",
      `trap '' TERM; sleep 30 & echo $! >> ${pidFile}; echo $$ >> ${pidFile}; wait`,
    );
    await Deno.mkdir(`${tmp}/files`);
    const { runs, lines } = await underNarrowRun(dir, tmp, `${path},kill`);
    const pids = await pidsIn(pidFile);
    try {
      assert.deepEqual(runs.map((r) => [r.ok, r.timedOut, r.signal]), [
        [false, true, "SIGKILL"],
        [false, true, "SIGKILL"],
      ]);
      assert.equal(pids.length, 4);
      await assertAllGone(pids);
      assert.deepEqual(lines, []);
      assert.deepEqual(await entries(`${tmp}/files`), []);
    } finally {
      killQuietly(pids);
    }
  } finally {
    await removeAll(dir, tmp);
  }
});

Deno.test("under --allow-run=<script> alone only the script is killed, with one warning", async () => {
  const { dir, tmp } = await folders();
  try {
    const path = await script(dir, "push", "exec sleep 30");
    await Deno.mkdir(`${tmp}/files`);
    const { runs, lines } = await underNarrowRun(dir, tmp, path);
    assert.deepEqual(runs.map((r) => [r.ok, r.timedOut, r.signal, r.error]), [
      [false, true, "SIGTERM", "timed out after 300 ms"],
      [false, true, "SIGTERM", "timed out after 300 ms"],
    ]);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.level, "warn");
    assert.match(String(lines[0]?.msg), /narrow --allow-run/);
    assert.deepEqual(await entries(`${tmp}/files`), []);
  } finally {
    await removeAll(dir, tmp);
  }
});

Deno.test("createScriptRunner() asks for the token only when a script runs, and a token that cannot be had fails the run", async () => {
  const { dir, tmp } = await folders();
  try {
    const runner = createScriptRunner(optionsOf(dir, tmp));
    let asked = 0;
    const token = () => {
      asked++;
      return Promise.reject(new Error("mint failed"));
    };
    assert.deepEqual(await runner.run(jobOf(), token, never), []);
    assert.equal(asked, 0, "no script: no token asked for");
    await script(dir, "push", "echo hi");
    const runs = await runner.run(jobOf(), token, never);
    assert.equal(asked, 1);
    assert.deepEqual(runs.map((r) => [r.handler, r.ok]), [[
      "(GITHUB_TOKEN)",
      false,
    ]]);
    assert.match(
      runs[0]!.error ?? "",
      /no token for the scripts: .*mint failed/,
    );
  } finally {
    await removeAll(dir, tmp);
  }
});
