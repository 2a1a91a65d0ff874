import assert from "node:assert/strict";
import {
  importSecrets,
  verifySignature,
} from "../../lib/security/signature.ts";
import { main, parseSendArgs, type SendDeps, USAGE } from "../../tools/send.ts";
import { createSecret } from "../../tools/secret.ts";

const SECRET = "It's a Secret to Everybody";
const EXAMPLES_DIR = decodeURIComponent(
  new URL("../../examples", import.meta.url).pathname,
);
const UUID =
  /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface Captured {
  method: string;
  path: string;
  headers: Headers;
  body: Uint8Array<ArrayBuffer>;
}

/** A real server on 127.0.0.1:0 that records every request. */
function startServer(
  respond: (req: Request) => Response = (req) =>
    Response.json(
      { status: "queued", delivery: req.headers.get("x-github-delivery") },
      { status: 202 },
    ),
) {
  const requests: Captured[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      requests.push({
        method: req.method,
        path: new URL(req.url).pathname,
        headers: req.headers,
        body: new Uint8Array(await req.arrayBuffer()),
      });
      return respond(req);
    },
  );
  return {
    requests,
    port: server.addr.port,
    url: `http://127.0.0.1:${server.addr.port}/webhook`,
    close: () => server.shutdown(),
  };
}

/** Paths under this folder are served from `files`, never from disk. */
const VIRTUAL = "/virtual/hookgate-send-test";

/**
 * Deps with a fixed environment, captured output, and in-memory `files`
 * under {@link VIRTUAL} (no `.env` unless given): the tests write nothing.
 */
function testDeps(
  overrides: SendDeps = {},
  files: Record<string, string> = {},
) {
  const out: string[] = [];
  const err: string[] = [];
  const deps: SendDeps = {
    env: { GITHUB_WEBHOOK_SECRET: SECRET },
    dotenvPath: `${VIRTUAL}/.env`,
    examplesDir: EXAMPLES_DIR,
    readFile: (path) => {
      if (!path.startsWith(`${VIRTUAL}/`)) return Deno.readFile(path);
      const text = files[path.slice(VIRTUAL.length + 1)];
      return text === undefined
        ? Promise.reject(new Deno.errors.NotFound(`No such file: ${path}`))
        : Promise.resolve(new TextEncoder().encode(text));
    },
    print: (text) => out.push(text),
    printError: (text) => err.push(text),
    ...overrides,
  };
  return { deps, stdout: () => out.join("\n"), stderr: () => err.join("\n") };
}

async function hmacSha1Hex(
  secret: string,
  body: Uint8Array<ArrayBuffer>,
): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-1" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, body));
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function verifies(
  secret: string,
  body: Uint8Array<ArrayBuffer>,
  header: string | null,
): Promise<boolean> {
  return verifySignature(await importSecrets([secret]), body, header);
}

Deno.test("send main() posts an example with every header GitHub sends", async (t) => {
  const server = startServer();
  try {
    const { deps, stdout, stderr } = testDeps();
    const status = await main(["ping", "--url", server.url], deps);
    assert.equal(status, 0, stderr());
    assert.equal(server.requests.length, 1);
    const req = server.requests[0]!;
    const file = await Deno.readFile(`${EXAMPLES_DIR}/ping.json`);

    await t.step("method, path and body bytes", () => {
      assert.equal(req.method, "POST");
      assert.equal(req.path, "/webhook");
      assert.deepEqual(req.body, file);
      assert.equal(req.headers.get("content-length"), String(file.byteLength));
    });

    await t.step("GitHub's headers", () => {
      const h = req.headers;
      assert.equal(h.get("content-type"), "application/json");
      assert.equal(h.get("x-github-event"), "ping");
      assert.match(h.get("x-github-delivery")!, UUID);
      assert.equal(h.get("x-github-hook-id"), "512345678");
      assert.equal(
        h.get("x-github-hook-installation-target-type"),
        "repository",
      );
      assert.equal(h.get("x-github-hook-installation-target-id"), "1296269");
      assert.match(h.get("user-agent")!, /^GitHub-Hookshot\/[0-9a-f]{7}$/);
    });

    await t.step(
      "X-Hub-Signature-256 verifies with lib/security/signature.ts",
      async () => {
        const header = req.headers.get("x-hub-signature-256");
        assert.match(header!, /^sha256=[0-9a-f]{64}$/);
        assert.equal(await verifies(SECRET, req.body, header), true);
        assert.equal(await verifies("another secret", req.body, header), false);
      },
    );

    await t.step("legacy X-Hub-Signature is HMAC-SHA1", async () => {
      assert.equal(
        req.headers.get("x-hub-signature"),
        `sha1=${await hmacSha1Hex(SECRET, req.body)}`,
      );
    });

    await t.step("prints the status and the answer", () => {
      const delivery = req.headers.get("x-github-delivery")!;
      assert.match(stdout(), /HTTP 202 Accepted/);
      assert.ok(
        stdout().includes(`{"status":"queued","delivery":"${delivery}"}`),
      );
      assert.ok(stdout().includes(delivery));
      assert.ok(!stdout().includes(SECRET));
    });
  } finally {
    await server.close();
  }
});

Deno.test("send main() sends a given file byte for byte under --delivery", async (t) => {
  const server = startServer();
  try {
    await t.step("a payload with an organization and odd spacing", async () => {
      const text =
        '{ "action" : "created",\n\t"organization": {"id": 42, "login": "octo-org"} }\r\n';
      const file = `${VIRTUAL}/org.json`;
      const { deps, stderr } = testDeps({}, { "org.json": text });
      const status = await main(
        ["organization", file, "--url", server.url, "--delivery=my-test-1"],
        deps,
      );
      assert.equal(status, 0, stderr());
      const req = server.requests.at(-1)!;
      assert.equal(new TextDecoder().decode(req.body), text);
      assert.equal(req.headers.get("x-github-delivery"), "my-test-1");
      assert.equal(req.headers.get("x-github-event"), "organization");
      assert.equal(
        req.headers.get("x-github-hook-installation-target-type"),
        "organization",
      );
      assert.equal(
        req.headers.get("x-github-hook-installation-target-id"),
        "42",
      );
      assert.equal(req.headers.get("x-github-hook-id"), "512345678");
      assert.equal(
        await verifies(
          SECRET,
          req.body,
          req.headers.get("x-hub-signature-256"),
        ),
        true,
      );
    });

    await t.step(
      "a payload that is not JSON is sent anyway, with a warning",
      async () => {
        const file = `${VIRTUAL}/broken.json`;
        const { deps, stderr } = testDeps({}, { "broken.json": "{not json" });
        const status = await main(["push", file, "--url", server.url], deps);
        assert.equal(status, 0);
        assert.equal(
          new TextDecoder().decode(server.requests.at(-1)!.body),
          "{not json",
        );
        assert.match(stderr(), /not a JSON object/);
      },
    );

    await t.step("a missing file is an error", async () => {
      const before = server.requests.length;
      const { deps, stderr } = testDeps();
      const status = await main([
        "push",
        `${VIRTUAL}/absent.json`,
        "--url",
        server.url,
      ], deps);
      assert.equal(status, 1);
      assert.match(stderr(), /Cannot read the payload file .*absent\.json/);
      assert.equal(server.requests.length, before);
    });
  } finally {
    await server.close();
  }
});

Deno.test("send main() --form sends payload=<url-encoded json>", async () => {
  const server = startServer();
  try {
    const { deps, stderr } = testDeps();
    const status = await main(["issues", "--form", "--url", server.url], deps);
    assert.equal(status, 0, stderr());
    const req = server.requests[0]!;
    const fileText = await Deno.readTextFile(`${EXAMPLES_DIR}/issues.json`);
    const bodyText = new TextDecoder().decode(req.body);
    assert.equal(
      req.headers.get("content-type"),
      "application/x-www-form-urlencoded",
    );
    assert.ok(bodyText.startsWith("payload="));
    assert.ok(!/[\s{}"]/.test(bodyText), "the JSON is url-encoded");
    const params = new URLSearchParams(bodyText);
    assert.deepEqual([...params.keys()], ["payload"]);
    assert.equal(params.get("payload"), fileText);
    // GitHub signs the bytes it sends: the form body, not the JSON inside.
    const header = req.headers.get("x-hub-signature-256");
    assert.equal(await verifies(SECRET, req.body, header), true);
    assert.equal(
      req.headers.get("x-hub-signature"),
      `sha1=${await hmacSha1Hex(SECRET, req.body)}`,
    );
  } finally {
    await server.close();
  }
});

Deno.test("send main() finds the URL and secret in the environment and .env", async (t) => {
  const server = startServer();
  const files = (): Record<string, string> => ({
    ".env":
      `# written by send_test\nGITHUB_WEBHOOK_SECRET="from dotenv"\nPORT=${server.port}\n` +
      "export OTHER_SECRET=other\n",
  });
  try {
    await t.step("default URL from PORT and WEBHOOK_PATH", async () => {
      const { deps, stderr } = testDeps({
        env: {
          GITHUB_WEBHOOK_SECRET: SECRET,
          PORT: String(server.port),
          WEBHOOK_PATH: "/hooks/github",
          HOST: "0.0.0.0",
        },
      });
      assert.equal(await main(["push"], deps), 0, stderr());
      assert.equal(server.requests.at(-1)!.path, "/hooks/github");
    });

    await t.step(".env supplies the secret and the port", async () => {
      const { deps, stderr } = testDeps({ env: {} }, files());
      assert.equal(await main(["ping"], deps), 0, stderr());
      const req = server.requests.at(-1)!;
      assert.equal(req.path, "/webhook");
      assert.equal(
        await verifies(
          "from dotenv",
          req.body,
          req.headers.get("x-hub-signature-256"),
        ),
        true,
      );
    });

    await t.step("the real environment wins over .env", async () => {
      const { deps, stderr } = testDeps({
        env: { GITHUB_WEBHOOK_SECRET: "from env" },
      }, files());
      assert.equal(await main(["ping"], deps), 0, stderr());
      const req = server.requests.at(-1)!;
      const header = req.headers.get("x-hub-signature-256");
      assert.equal(await verifies("from env", req.body, header), true);
      assert.equal(await verifies("from dotenv", req.body, header), false);
    });

    await t.step("--secret-env names another variable", async () => {
      const { deps, stderr } = testDeps({ env: {} }, files());
      assert.equal(
        await main(["ping", "--secret-env", "OTHER_SECRET"], deps),
        0,
        stderr(),
      );
      const req = server.requests.at(-1)!;
      assert.equal(
        await verifies(
          "other",
          req.body,
          req.headers.get("x-hub-signature-256"),
        ),
        true,
      );
    });
  } finally {
    await server.close();
  }
});

Deno.test("send main() exits 1 on a non-2xx answer, with a hint", async (t) => {
  const cases: [string, number, string, RegExp][] = [
    [
      "bad_signature",
      401,
      "signature mismatch",
      /GITHUB_WEBHOOK_SECRET differs/,
    ],
    ["ip_not_allowed", 403, "not allowed", /IP_ALLOWLIST=off/],
    ["invalid_payload", 400, "not JSON", /^$/],
  ];
  for (const [code, status, message, hint] of cases) {
    await t.step(`${status} ${code}`, async () => {
      const server = startServer(() =>
        Response.json({ error: code, message }, { status })
      );
      try {
        const { deps, stdout, stderr } = testDeps();
        assert.equal(await main(["ping", "--url", server.url], deps), 1);
        assert.match(stdout(), new RegExp(`HTTP ${status} `));
        assert.ok(stdout().includes(code));
        assert.match(stderr(), hint);
      } finally {
        await server.close();
      }
    });
  }

  await t.step("200 duplicate is a success, with a note", async () => {
    const server = startServer(() =>
      Response.json({ status: "duplicate", delivery: "x" })
    );
    try {
      const { deps, stderr } = testDeps();
      assert.equal(await main(["ping", "--url", server.url], deps), 0);
      assert.match(stderr(), /nothing ran again/);
    } finally {
      await server.close();
    }
  });

  await t.step("an unreachable server", async () => {
    const server = startServer();
    await server.close();
    const { deps, stderr } = testDeps();
    assert.equal(await main(["ping", "--url", server.url], deps), 1);
    assert.match(stderr(), /Cannot reach .*Is the server running/s);
  });
});

Deno.test("send main() refuses to run without a secret", async (t) => {
  const server = startServer();
  try {
    for (
      const env of [{}, { GITHUB_WEBHOOK_SECRET: "" }] as Record<
        string,
        string
      >[]
    ) {
      await t.step(JSON.stringify(env), async () => {
        const { deps, stdout, stderr } = testDeps({ env });
        assert.equal(await main(["ping", "--url", server.url], deps), 1);
        assert.match(stderr(), /GITHUB_WEBHOOK_SECRET is not set/);
        assert.match(stderr(), /deno task secret/);
        assert.equal(stdout(), "");
      });
    }
    await t.step(
      "an unreadable .env is an error, not an absent one",
      async () => {
        const { deps, stderr } = testDeps({
          env: {},
          readFile: () =>
            Promise.reject(
              new Deno.errors.PermissionDenied("read access denied"),
            ),
        });
        assert.equal(
          await main(["ping", "x.json", "--url", server.url], deps),
          1,
        );
        assert.match(stderr(), /read access denied/);
      },
    );
    await t.step("--secret-env names the variable in the message", async () => {
      const { deps, stderr } = testDeps({
        env: { GITHUB_WEBHOOK_SECRET: SECRET },
      });
      assert.equal(
        await main(
          ["ping", "--secret-env", "NEW_SECRET", "--url", server.url],
          deps,
        ),
        1,
      );
      assert.match(stderr(), /NEW_SECRET is not set/);
    });
    assert.equal(server.requests.length, 0);
  } finally {
    await server.close();
  }
});

Deno.test("send main() lists the examples for an event without one", async () => {
  const server = startServer();
  try {
    const { deps, stderr } = testDeps();
    assert.equal(
      await main(["deployment_status", "--url", server.url], deps),
      1,
    );
    assert.match(
      stderr(),
      /No example payload for the event "deployment_status"/,
    );
    assert.match(
      stderr(),
      /Examples: check_suite, issue_comment, issues, ping, pull_request, push, release, star, workflow_run/,
    );
    assert.match(
      stderr(),
      /deno task send deployment_status path\/to\/payload\.json/,
    );
    assert.equal(server.requests.length, 0);
  } finally {
    await server.close();
  }
});

Deno.test("send main() answers usage errors with 2 and --help with 0", async (t) => {
  const usageErrors: [string[], RegExp][] = [
    [[], /Missing the event name/],
    [["ping", "--bogus"], /Unknown option: --bogus/],
    [["ping", "--url"], /--url needs a value/],
    [["ping", "--url", "ftp://example.com/"], /--url must be an http\(s\) URL/],
    [["ping", "a.json", "b.json"], /Too many arguments: b\.json/],
    [["../../etc/passwd"], /No example file can be named/],
    [["ping", "--delivery="], /--delivery must be non-empty/],
    [["ping", "--form=yes"], /--form takes no value/],
    [
      ["ping", "--secret-env", "not a name"],
      /--secret-env must be a variable name/,
    ],
    [["a\nb", "file.json"], /without control characters/],
  ];
  for (const [args, message] of usageErrors) {
    await t.step(JSON.stringify(args), async () => {
      const { deps, stdout, stderr } = testDeps();
      assert.equal(await main(args, deps), 2);
      assert.match(stderr(), message);
      assert.ok(stderr().includes(USAGE));
      assert.equal(stdout(), "");
    });
  }

  for (const flag of ["--help", "-h"]) {
    await t.step(flag, async () => {
      const { deps, stdout } = testDeps();
      assert.equal(await main(["ping", flag], deps), 0);
      assert.equal(stdout(), USAGE);
    });
  }
});

Deno.test("parseSendArgs() reads flags in either form and after --", () => {
  assert.deepEqual(
    parseSendArgs([
      "push",
      "p.json",
      "--url=http://h/x",
      "--delivery",
      "d",
      "--form",
    ]),
    {
      event: "push",
      file: "p.json",
      url: "http://h/x",
      form: true,
      delivery: "d",
      secretEnv: "GITHUB_WEBHOOK_SECRET",
    },
  );
  assert.deepEqual(
    parseSendArgs(["--", "push", "--odd-file.json"])?.file,
    "--odd-file.json",
  );
  assert.equal(parseSendArgs(["--help", "--bogus"]), null);
});

Deno.test("createSecret() returns 32 random bytes as hex", () => {
  const a = createSecret();
  const b = createSecret();
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.notEqual(a, b);
  assert.match(createSecret(16), /^[0-9a-f]{32}$/);
  assert.throws(() => createSecret(8), RangeError);
});
