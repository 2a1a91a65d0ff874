import assert from "node:assert/strict";
import {
  type ImportKeyResult,
  loadAppKey,
  MAX_KEY_FILE_BYTES,
} from "../../lib/github/app_config.ts";
import { StartupError } from "../../lib/_util/errors.ts";

const SANITIZE = { sanitizeOps: true, sanitizeResources: true } as const;
const ALGORITHM = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as const;

/** A fresh RSA-2048 key pair and its private key as a PKCS#8 PEM. */
async function makeKey(): Promise<{ pem: string; publicKey: CryptoKey }> {
  const pair = await crypto.subtle.generateKey(
    {
      ...ALGORITHM,
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
    },
    true,
    ["sign", "verify"],
  );
  const der = new Uint8Array(
    await crypto.subtle.exportKey("pkcs8", pair.privateKey),
  );
  const base64 = btoa(String.fromCharCode(...der));
  const lines = base64.match(/.{1,64}/g)!.join("\n");
  return {
    pem: `-----BEGIN PRIVATE KEY-----\n${lines}\n-----END PRIVATE KEY-----\n`,
    publicKey: pair.publicKey,
  };
}

/** Whether `key` signs what `publicKey` verifies (RS256). */
async function signsFor(
  key: CryptoKey,
  publicKey: CryptoKey,
): Promise<boolean> {
  const data = new TextEncoder().encode("header.claims");
  const signature = await crypto.subtle.sign(ALGORITHM, key, data);
  return await crypto.subtle.verify(ALGORITHM, publicKey, signature, data);
}

/** The StartupError `promise` rejects with (fails otherwise). */
async function startupError(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(() => null, (e: unknown) => e);
  assert.ok(err instanceof StartupError, `expected a StartupError, got ${err}`);
  return err.message;
}

/** A key's base64 body, for checking it never appears in a message. */
function bodyOf(pem: string): string {
  return pem.split("\n")[1]!;
}

Deno.test(
  "loadAppKey() imports a PKCS#8 key from GITHUB_APP_PRIVATE_KEY, as PEM or \\n-escaped",
  SANITIZE,
  async (t) => {
    const { pem, publicKey } = await makeKey();
    for (
      const [name, text] of [
        ["PEM", pem],
        ["\\n-escaped", pem.trim().replaceAll("\n", "\\n")],
      ] as const
    ) {
      await t.step(name, async () => {
        const key = await loadAppKey({ id: "1", key: { text } });
        assert.equal(key.type, "private");
        assert.ok(await signsFor(key, publicKey));
      });
    }
  },
);

Deno.test(
  "loadAppKey() reads the key file named by GITHUB_APP_PRIVATE_KEY_PATH",
  SANITIZE,
  async () => {
    const { pem, publicKey } = await makeKey();
    const dir = await Deno.makeTempDir();
    try {
      const path = `${dir}/app.pem`;
      await Deno.writeTextFile(path, pem, { mode: 0o600 });
      const key = await loadAppKey({ id: "1", key: { path } });
      assert.ok(await signsFor(key, publicKey));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "loadAppKey() names GITHUB_APP_PRIVATE_KEY for an unusable key, never its text",
  SANITIZE,
  async (t) => {
    const { pem } = await makeKey();
    const broken = pem.replace(bodyOf(pem), bodyOf(pem).slice(0, 40) + "!!");
    const table: [string, string][] = [
      ["not a key", "hello"],
      ["a public key", pem.replaceAll("PRIVATE", "PUBLIC")],
      ["broken base64", broken],
      ["a truncated key", pem.replace(/\n[^\n]+\n-----END/, "\n-----END")],
    ];
    for (const [name, text] of table) {
      await t.step(name, async () => {
        const message = await startupError(
          loadAppKey({ id: "1", key: { text } }),
        );
        assert.match(
          message,
          /^GITHUB_APP_PRIVATE_KEY does not hold a usable private key: /,
        );
        assert.ok(!message.includes(bodyOf(pem).slice(0, 20)), message);
        assert.ok(!message.includes("hello"), message);
      });
    }
  },
);

Deno.test(
  "loadAppKey() names GITHUB_APP_PRIVATE_KEY_PATH and the path when the file cannot be used",
  SANITIZE,
  async (t) => {
    const { pem } = await makeKey();
    const dir = await Deno.makeTempDir();
    try {
      await t.step("a missing file", async () => {
        const path = `${dir}/missing.pem`;
        const message = await startupError(
          loadAppKey({ id: "1", key: { path } }),
        );
        assert.equal(
          message,
          `GITHUB_APP_PRIVATE_KEY_PATH is ${
            JSON.stringify(path)
          }, which does not exist`,
        );
      });
      await t.step("a folder", async () => {
        const message = await startupError(
          loadAppKey({ id: "1", key: { path: dir } }),
        );
        assert.match(
          message,
          /^GITHUB_APP_PRIVATE_KEY_PATH is ".+", which is not a file$/,
        );
        assert.ok(message.includes(dir));
      });
      await t.step("a file too large for a key", async () => {
        const path = `${dir}/big.pem`;
        await Deno.writeFile(path, new Uint8Array(MAX_KEY_FILE_BYTES + 1));
        const message = await startupError(
          loadAppKey({ id: "1", key: { path } }),
        );
        assert.match(message, /which is 65537 bytes long, too long/);
      });
      await t.step("a binary file", async () => {
        const path = `${dir}/key.der`;
        await Deno.writeFile(path, new Uint8Array([0x30, 0x82, 0xff, 0xfe]));
        const message = await startupError(
          loadAppKey({ id: "1", key: { path } }),
        );
        assert.match(message, /which is not a text \(PEM\) file$/);
      });
      await t.step("a file holding something else", async () => {
        const path = `${dir}/wrong.pem`;
        await Deno.writeTextFile(path, pem.replaceAll("PRIVATE", "PUBLIC"));
        const message = await startupError(
          loadAppKey({ id: "1", key: { path } }),
        );
        assert.ok(
          message.startsWith(
            `GITHUB_APP_PRIVATE_KEY_PATH (${
              JSON.stringify(path)
            }) does not hold a usable private key: `,
          ),
          message,
        );
        assert.ok(!message.includes(bodyOf(pem).slice(0, 20)), message);
      });
      await t.step("a file the permissions do not cover", async () => {
        const message = await startupError(
          loadAppKey({ id: "1", key: { path: "/etc/app.pem" } }, {
            stat: () => Promise.reject(new Deno.errors.NotCapable("no")),
          }),
        );
        assert.match(
          message,
          /"\/etc\/app\.pem", which the server may not read: add --allow-read=\/etc\/app\.pem/,
        );
      });
      await t.step("a file its owner keeps to itself", async () => {
        const message = await startupError(
          loadAppKey({ id: "1", key: { path: "/etc/app.pem" } }, {
            readFile: () =>
              Promise.reject(new Deno.errors.PermissionDenied("no")),
            stat: () => Deno.stat(dir).then((i) => ({ ...i, isFile: true })),
          }),
        );
        assert.match(message, /which the server's user may not read/);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "loadAppKey() uses the injected importer, passing on its error and hiding a throw",
  SANITIZE,
  async (t) => {
    const { pem, publicKey } = await makeKey();
    const real = await loadAppKey({ id: "1", key: { text: pem } });
    const seen: string[] = [];
    await t.step("its key", async () => {
      const key = await loadAppKey({ id: "1", key: { text: "escaped" } }, {
        importKey: (text): Promise<ImportKeyResult> => {
          seen.push(text);
          return Promise.resolve({ ok: true, key: real });
        },
      });
      assert.ok(await signsFor(key, publicKey));
      assert.deepEqual(seen, ["escaped"]);
    });
    await t.step("its error", async () => {
      const message = await startupError(
        loadAppKey({ id: "1", key: { text: "x" } }, {
          importKey: () =>
            Promise.resolve({ ok: false, error: "an encrypted key" }),
        }),
      );
      assert.match(
        message,
        /^GITHUB_APP_PRIVATE_KEY does not hold a usable private key: an encrypted key\./,
      );
    });
    await t.step("a throw, whose message may hold the key", async () => {
      const message = await startupError(
        loadAppKey({ id: "1", key: { text: "x" } }, {
          importKey: () => Promise.reject(new Error(`bad ${pem}`)),
        }),
      );
      assert.ok(!message.includes(bodyOf(pem).slice(0, 20)), message);
      assert.match(message, /the key could not be imported/);
    });
  },
);
