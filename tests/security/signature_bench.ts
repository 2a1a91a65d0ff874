import {
  importSecrets,
  parseSignatureHeader,
  signBody,
  verifySignature,
} from "../../lib/security/signature.ts";

const SECRET = "It's a Secret to Everybody";
const [KEY] = await importSecrets([SECRET]);
const KEYS = [KEY!];
// Rotation: the current secret fails first, the previous one matches.
const ROTATING = await importSecrets(["a-newer-secret", SECRET]);

function body(size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = 0x20 + (i % 95); // printable, JSON-ish
  return bytes;
}

const SIZES: [string, number][] = [
  ["1 KB", 1024],
  ["25 KB", 25 * 1024],
  ["25 MB", 25 * 1024 * 1024],
];

for (const [label, size] of SIZES) {
  const data = body(size);
  const header = await signBody(SECRET, data);
  const mac = parseSignatureHeader(header)!;
  const group = `verify ${label}`;

  Deno.bench({
    name: `crypto.subtle.verify, ${label}`,
    group,
    baseline: true,
    async fn() {
      if (!(await crypto.subtle.verify("HMAC", KEY!, mac, data))) {
        throw new Error("bad");
      }
    },
  });

  Deno.bench({
    name: `verifySignature(), ${label}`,
    group,
    async fn() {
      if (!(await verifySignature(KEYS, data, header))) throw new Error("bad");
    },
  });

  Deno.bench({
    name: `verifySignature() with a previous secret, ${label}`,
    group,
    async fn() {
      if (!(await verifySignature(ROTATING, data, header))) {
        throw new Error("bad");
      }
    },
  });

  Deno.bench({
    name: `verifySignature() with a malformed header, ${label}`,
    group,
    async fn() {
      if (await verifySignature(KEYS, data, "sha1=" + header.slice(7, 47))) {
        throw new Error("bad");
      }
    },
  });
}

const HEADER = await signBody(
  SECRET,
  new TextEncoder().encode("Hello, World!"),
);
const UPPER = "sha256=" + HEADER.slice(7).toUpperCase();
const BAD_DIGIT = HEADER.slice(0, -1) + "g";
const TOO_LONG = HEADER + "0";

Deno.bench({
  name: "parseSignatureHeader(), valid lowercase",
  group: "parse header",
  baseline: true,
  fn() {
    if (parseSignatureHeader(HEADER) === null) throw new Error("bad");
  },
});

Deno.bench({
  name: "parseSignatureHeader(), valid uppercase",
  group: "parse header",
  fn() {
    if (parseSignatureHeader(UPPER) === null) throw new Error("bad");
  },
});

Deno.bench({
  name: "parseSignatureHeader(), bad last digit",
  group: "parse header",
  fn() {
    if (parseSignatureHeader(BAD_DIGIT) !== null) {
      throw new Error("bad");
    }
  },
});

Deno.bench({
  name: "parseSignatureHeader(), wrong length",
  group: "parse header",
  fn() {
    if (parseSignatureHeader(TOO_LONG) !== null) throw new Error("bad");
  },
});
