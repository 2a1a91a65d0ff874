import assert from "node:assert/strict";
import {
  importSecrets,
  parseSignatureHeader,
  signBody,
  verifySignature,
} from "../../lib/security/signature.ts";

/** Deno 2.9 leaves the op and resource sanitizers off by default: turn them on. */
const SANITIZE = { sanitizeOps: true, sanitizeResources: true } as const;

// GitHub's documented test vector.
const SECRET = "It's a Secret to Everybody";
const BODY = new TextEncoder().encode("Hello, World!");
const HEX = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
const HEADER = `sha256=${HEX}`;

function bytes(text: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(text);
}

function hexOf(data: Uint8Array): string {
  return Array.from(data, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Header forms that are never a valid `X-Hub-Signature-256`. */
const MALFORMED: [string, string | null | undefined][] = [
  ["the header is missing (null)", null],
  ["the header is missing (undefined)", undefined],
  ["the header is empty", ""],
  ["the prefix is missing", HEX],
  ["the prefix is only sha256=", "sha256="],
  ["the prefix is sha1=", `sha1=${HEX}`],
  ["only a SHA-1 signature is given", "sha1=" + "0".repeat(40)],
  ["the prefix is uppercase SHA256=", `SHA256=${HEX}`],
  ["the prefix is sha256:", `sha256:${HEX}`],
  ["the prefix is sha512=", `sha512=${HEX}`],
  ["there are 63 hex digits", `sha256=${HEX.slice(0, 63)}`],
  ["there are 65 hex digits", `sha256=${HEX}0`],
  ["there are 128 hex digits", `sha256=${HEX}${HEX}`],
  ["a digit is not hex (g)", `sha256=g${HEX.slice(1)}`],
  ["a low digit is not hex (z)", `sha256=${HEX.slice(0, 63)}z`],
  ["a digit is a colon (after 9)", `sha256=:${HEX.slice(1)}`],
  ["a digit is a slash (before 0)", `sha256=/${HEX.slice(1)}`],
  ["a digit is @ (before A)", `sha256=@${HEX.slice(1)}`],
  ["a digit is G (after F)", `sha256=G${HEX.slice(1)}`],
  ["a digit is ` (before a)", `sha256=\`${HEX.slice(1)}`],
  ["a digit is a non-ASCII letter", `sha256=é${HEX.slice(1)}`],
  ["a digit is a fullwidth digit", `sha256=７${HEX.slice(1)}`],
  ["there is a leading space", ` ${HEADER}`],
  ["there is a trailing space", `${HEADER} `],
  ["there is a trailing newline", `${HEADER}\n`],
  ["a space replaces a digit", `sha256= ${HEX.slice(1)}`],
  ["two signatures are joined by a comma", `${HEADER},${HEADER}`],
  [
    "the value is base64",
    "sha256=dXEH6g6yUJ/CESIczphLijdXC211hsIsRvQ3nIsEPhc=",
  ],
];

Deno.test(
  "signBody() reproduces GitHub's documented test vector",
  SANITIZE,
  async () => {
    assert.equal(await signBody(SECRET, BODY), HEADER);
  },
);

Deno.test(
  "signBody() accepts an imported key as well as a secret",
  SANITIZE,
  async () => {
    const [key] = await importSecrets([SECRET]);
    assert.equal(await signBody(key!, BODY), HEADER);
  },
);

Deno.test(
  "signBody() output always verifies (round trip)",
  SANITIZE,
  async (t) => {
    const keys = await importSecrets(["round-trip"]);
    const bodies: [string, Uint8Array<ArrayBuffer>][] = [
      ["empty", new Uint8Array(0)],
      ["one zero byte", new Uint8Array(1)],
      ["binary", Uint8Array.from({ length: 256 }, (_, i) => i)],
      ["JSON", bytes('{"zen":"Keep it logically awesome.","hook_id":1}')],
      ["non-ASCII", bytes("ünïcødé ✓ 🚀")],
      ["64 KiB", new Uint8Array(65_536).fill(0x61)],
    ];
    for (const [name, body] of bodies) {
      await t.step(name, async () => {
        const header = await signBody("round-trip", body);
        assert.match(header, /^sha256=[0-9a-f]{64}$/);
        assert.equal(await verifySignature(keys, body, header), true);
      });
    }
  },
);

Deno.test(
  "verifySignature() accepts GitHub's documented test vector",
  SANITIZE,
  async () => {
    const keys = await importSecrets([SECRET]);
    assert.equal(await verifySignature(keys, BODY, HEADER), true);
  },
);

Deno.test(
  "verifySignature() accepts uppercase hex digits",
  SANITIZE,
  async () => {
    const keys = await importSecrets([SECRET]);
    assert.equal(
      await verifySignature(keys, BODY, `sha256=${HEX.toUpperCase()}`),
      true,
    );
  },
);

Deno.test(
  "verifySignature() returns false for every malformed header",
  SANITIZE,
  async (t) => {
    const keys = await importSecrets([SECRET]);
    for (const [name, header] of MALFORMED) {
      await t.step(`returns false when ${name}`, async () => {
        assert.equal(await verifySignature(keys, BODY, header), false);
      });
    }
  },
);

Deno.test(
  "verifySignature() returns false under the wrong secret",
  SANITIZE,
  async () => {
    const keys = await importSecrets(["It's a Secret to Nobody"]);
    assert.equal(await verifySignature(keys, BODY, HEADER), false);
  },
);

Deno.test(
  "verifySignature() returns false when there are no keys",
  SANITIZE,
  async () => {
    assert.equal(await verifySignature([], BODY, HEADER), false);
  },
);

Deno.test(
  "verifySignature() returns false when one body byte is flipped",
  SANITIZE,
  async (t) => {
    const keys = await importSecrets([SECRET]);
    for (const index of [0, 6, BODY.length - 1]) {
      for (const mask of [0x01, 0x80]) {
        await t.step(`byte ${index} xor 0x${mask.toString(16)}`, async () => {
          const tampered = BODY.slice();
          tampered[index]! ^= mask;
          assert.equal(await verifySignature(keys, tampered, HEADER), false);
        });
      }
    }
  },
);

Deno.test(
  "verifySignature() returns false when the body is truncated or extended",
  SANITIZE,
  async (t) => {
    const keys = await importSecrets([SECRET]);
    await t.step("truncated", async () => {
      assert.equal(
        await verifySignature(keys, BODY.slice(0, -1), HEADER),
        false,
      );
    });
    await t.step("extended", async () => {
      assert.equal(
        await verifySignature(keys, bytes("Hello, World!\n"), HEADER),
        false,
      );
    });
    await t.step("empty", async () => {
      assert.equal(
        await verifySignature(keys, new Uint8Array(0), HEADER),
        false,
      );
    });
  },
);

Deno.test(
  "verifySignature() returns false when one signature digit is changed",
  SANITIZE,
  async (t) => {
    const keys = await importSecrets([SECRET]);
    for (const index of [0, 31, 63]) {
      await t.step(`digit ${index}`, async () => {
        const digit = HEX[index] === "0" ? "1" : "0";
        const header = `sha256=${HEX.slice(0, index)}${digit}${
          HEX.slice(index + 1)
        }`;
        assert.equal(await verifySignature(keys, BODY, header), false);
      });
    }
  },
);

Deno.test(
  "verifySignature() accepts the previous secret while rotating",
  SANITIZE,
  async (t) => {
    const keys = await importSecrets(["new-secret", SECRET]);
    await t.step("signed with the previous secret", async () => {
      assert.equal(await verifySignature(keys, BODY, HEADER), true);
    });
    await t.step("signed with the current secret", async () => {
      assert.equal(
        await verifySignature(keys, BODY, await signBody("new-secret", BODY)),
        true,
      );
    });
    await t.step("signed with neither", async () => {
      assert.equal(
        await verifySignature(keys, BODY, await signBody("other", BODY)),
        false,
      );
    });
  },
);

Deno.test(
  "importSecrets() skips missing and empty secrets, keeping the order",
  SANITIZE,
  async () => {
    const keys = await importSecrets([
      undefined,
      "current",
      "",
      "previous",
      undefined,
    ]);
    assert.equal(keys.length, 2);
    assert.equal(
      await signBody(keys[0]!, BODY),
      await signBody("current", BODY),
    );
    assert.equal(
      await signBody(keys[1]!, BODY),
      await signBody("previous", BODY),
    );
  },
);

Deno.test(
  "importSecrets() returns HMAC-SHA256 keys that cannot be exported",
  SANITIZE,
  async () => {
    const [key] = await importSecrets([SECRET]);
    assert.ok(key);
    assert.equal(key.type, "secret");
    assert.equal(key.extractable, false);
    assert.deepEqual(key.algorithm, {
      name: "HMAC",
      hash: { name: "SHA-256" },
      length: 208,
    });
    assert.deepEqual([...key.usages].toSorted(), ["sign", "verify"]);
    await assert.rejects(() => crypto.subtle.exportKey("raw", key));
  },
);

Deno.test(
  "importSecrets() returns no keys for no secrets",
  SANITIZE,
  async () => {
    assert.deepEqual(await importSecrets([]), []);
    assert.deepEqual(await importSecrets(["", undefined]), []);
  },
);

Deno.test(
  "parseSignatureHeader() decodes the 32 signature bytes",
  SANITIZE,
  async (t) => {
    await t.step("lowercase", () => {
      const parsed = parseSignatureHeader(HEADER);
      assert.ok(parsed);
      assert.equal(parsed.byteLength, 32);
      assert.equal(hexOf(parsed), HEX);
    });
    await t.step("uppercase", () => {
      assert.equal(
        hexOf(parseSignatureHeader(`sha256=${HEX.toUpperCase()}`)!),
        HEX,
      );
    });
    await t.step("every hex digit", () => {
      const digits = "0123456789abcdefABCDEF".padEnd(64, "0");
      const expected = "0123456789abcdefabcdef".padEnd(64, "0");
      assert.equal(hexOf(parseSignatureHeader(`sha256=${digits}`)!), expected);
    });
    await t.step("all zeros and all ones", () => {
      assert.deepEqual(
        parseSignatureHeader(`sha256=${"0".repeat(64)}`),
        new Uint8Array(32),
      );
      assert.deepEqual(
        parseSignatureHeader(`sha256=${"f".repeat(64)}`),
        new Uint8Array(32).fill(255),
      );
    });
  },
);

Deno.test(
  "parseSignatureHeader() returns null for every malformed header",
  SANITIZE,
  async (t) => {
    for (const [name, header] of MALFORMED) {
      await t.step(`returns null when ${name}`, () => {
        assert.equal(parseSignatureHeader(header), null);
      });
    }
  },
);

Deno.test(
  "parseSignatureHeader() returns null for non-string input",
  SANITIZE,
  async (t) => {
    for (const value of [42, {}, [HEADER], new String(HEADER)]) {
      await t.step(Object.prototype.toString.call(value), () => {
        assert.equal(parseSignatureHeader(value as unknown as string), null);
      });
    }
  },
);
