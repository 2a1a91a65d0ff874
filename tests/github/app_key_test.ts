import assert from "node:assert/strict";
import {
  derLength,
  importAppKey,
  parseAppKey,
  wrapPkcs1,
} from "../../lib/github/app_key.ts";
import { keyLines, makeTestKeys } from "./_keys.ts";

const keys = await makeTestKeys();
if (keys === null) {
  console.warn("openssl is missing: skipping the tests that need real keys");
}

function toBase64(text: string): string {
  return btoa(text);
}

Deno.test({
  name: "importAppKey() accepts PKCS#1 and PKCS#8 PEM, \\n-escaped and base64",
  ignore: keys === null,
  fn: async (t) => {
    const { pkcs1, pkcs8 } = keys!;
    const forms: Record<string, string> = {
      "PKCS#1 PEM": pkcs1,
      "PKCS#8 PEM": pkcs8,
      "PKCS#1 with \\n": pkcs1.trim().replaceAll("\n", "\\n"),
      "PKCS#8 with \\n": pkcs8.trim().replaceAll("\n", "\\n"),
      "PKCS#1 with \\r\\n": pkcs1.trim().replaceAll("\n", "\\r\\n"),
      "PKCS#1 quoted": `"${pkcs1.trim().replaceAll("\n", "\\n")}"`,
      "PKCS#1 CRLF": pkcs1.replaceAll("\n", "\r\n"),
      "base64 of PKCS#1": toBase64(pkcs1),
      "base64 of PKCS#8": toBase64(pkcs8),
      "base64 of PKCS#1, wrapped": toBase64(pkcs1).replace(/(.{76})/g, "$1\n"),
    };
    for (const [name, text] of Object.entries(forms)) {
      await t.step(name, async () => {
        const imported = await importAppKey(text);
        assert.ok(imported.ok, imported.ok ? "" : imported.error);
        assert.equal(imported.key.extractable, false);
        assert.deepEqual(imported.key.usages, ["sign"]);
        assert.equal(imported.key.algorithm.name, "RSASSA-PKCS1-v1_5");
        const signature = await crypto.subtle.sign(
          "RSASSA-PKCS1-v1_5",
          imported.key,
          new TextEncoder().encode("x"),
        );
        assert.equal(signature.byteLength, 256);
      });
    }
  },
});

Deno.test({
  name: "parseAppKey() wraps PKCS#1 into the PKCS#8 openssl writes",
  ignore: keys === null,
  fn: async () => {
    const { pkcs1 } = keys!;
    const parsed = parseAppKey(pkcs1);
    assert.ok(parsed.ok);
    const child = new Deno.Command("openssl", {
      args: ["pkcs8", "-topk8", "-nocrypt", "-outform", "DER"],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(pkcs1));
    await writer.close();
    const { stdout } = await child.output();
    assert.deepEqual(parsed.pkcs8, stdout);
  },
});

Deno.test("derLength() uses the short form below 128 and long form above", () => {
  assert.deepEqual([...derLength(0)], [0]);
  assert.deepEqual([...derLength(127)], [127]);
  assert.deepEqual([...derLength(128)], [0x81, 128]);
  assert.deepEqual([...derLength(255)], [0x81, 255]);
  assert.deepEqual([...derLength(256)], [0x82, 1, 0]);
  assert.deepEqual([...derLength(1192)], [0x82, 0x04, 0xa8]);
  assert.deepEqual([...derLength(70000)], [0x83, 0x01, 0x11, 0x70]);
  const wrapped = wrapPkcs1(new Uint8Array(1200).fill(0x30));
  assert.deepEqual([...wrapped.slice(0, 4)], [0x30, 0x82, 0x04, 0xc6]);
  assert.equal(wrapped.length, 4 + 0x04c6);
});

Deno.test({
  name: "importAppKey() refuses bad keys with messages that hold no key line",
  ignore: keys === null,
  fn: async (t) => {
    const { pkcs1, ec, ecPkcs8 } = keys!;
    const lines = pkcs1.trim().split("\n");
    const truncated = [...lines.slice(0, 10), lines.at(-1)!].join("\n");
    const garbage = "-----BEGIN PRIVATE KEY-----\n" +
      btoa("\x30\x03\x02\x01\x00") + "\n-----END PRIVATE KEY-----";
    const cases: Record<string, [string, RegExp]> = {
      "empty": ["", /empty/],
      "blank": ["  \n ", /empty/],
      "random text": ["hello, this is not a key at all", /neither PEM/],
      "base64 of random text": [btoa("just some words"), /neither PEM/],
      "truncated PKCS#1": [truncated, /cut off/],
      "no END line": [lines.slice(0, -1).join("\n"), /not PEM/],
      "EC key": [ec, /EC key/],
      "EC key as PKCS#8": [ecPkcs8, /not an RSA private key/],
      "garbage DER": [garbage, /not an RSA private key/],
      "a public key": [keys!.publicPem, /PUBLIC KEY, not a private key/],
      "bad base64 body": [
        "-----BEGIN RSA PRIVATE KEY-----\n!!!!\n-----END RSA PRIVATE KEY-----",
        /not base64/,
      ],
      "encrypted": [
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
        /encrypted/,
      ],
    };
    const secretLines = [
      ...keyLines(pkcs1),
      ...keyLines(ec),
      ...keyLines(ecPkcs8),
    ];
    for (const [name, [text, pattern]] of Object.entries(cases)) {
      await t.step(name, async () => {
        const imported = await importAppKey(text);
        assert.equal(imported.ok, false);
        if (imported.ok) return;
        assert.match(imported.error, pattern);
        for (const line of [...secretLines, ...keyLines(text)]) {
          assert.ok(!imported.error.includes(line), `${name} leaks a line`);
        }
      });
    }
  },
});
