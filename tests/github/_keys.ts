/**
 * Real keys for the App-auth tests, made by `openssl` at test time (none is
 * committed): an RSA key in PKCS#1 and PKCS#8 PEM, and an EC key. `null`
 * when openssl is missing (the tests then skip, saying so).
 *
 * @module
 */

/** Keys in the forms GitHub and openssl write them. */
export interface TestKeys {
  /** `BEGIN RSA PRIVATE KEY`, as GitHub hands it out. */
  pkcs1: string;
  /** `BEGIN PRIVATE KEY`, of another RSA key. */
  pkcs8: string;
  /** The SPKI PEM of the PKCS#1 key. */
  publicPem: string;
  /** `BEGIN EC PRIVATE KEY`. */
  ec: string;
  /** The EC key as `BEGIN PRIVATE KEY`. */
  ecPkcs8: string;
}

async function openssl(args: string[], input?: string): Promise<string> {
  const child = new Deno.Command("openssl", {
    args,
    stdin: input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (input !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(input));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  if (code !== 0) {
    throw new Error(
      `openssl ${args[0]} failed: ${new TextDecoder().decode(stderr)}`,
    );
  }
  return new TextDecoder().decode(stdout);
}

/** Makes the keys; `null` when openssl cannot be run. */
export async function makeTestKeys(): Promise<TestKeys | null> {
  try {
    await openssl(["version"]);
  } catch {
    return null;
  }
  const pkcs1 = await openssl(["genrsa", "-traditional", "2048"]);
  const pkcs8 = await openssl([
    "genpkey",
    "-algorithm",
    "RSA",
    "-pkeyopt",
    "rsa_keygen_bits:2048",
  ]);
  const publicPem = await openssl(["pkey", "-pubout"], pkcs1);
  const ec = await openssl([
    "ecparam",
    "-name",
    "prime256v1",
    "-genkey",
    "-noout",
  ]);
  const ecPkcs8 = await openssl(["pkcs8", "-topk8", "-nocrypt"], ec);
  return { pkcs1, pkcs8, publicPem, ec, ecPkcs8 };
}

/** The SPKI DER of a `BEGIN PUBLIC KEY` PEM. */
export function spkiOf(publicPem: string): Uint8Array<ArrayBuffer> {
  const body = publicPem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
  return Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
}

/** The key's base64 lines (not the BEGIN/END lines), to look for in messages. */
export function keyLines(pem: string): string[] {
  return pem.split("\n").map((line) => line.trim()).filter((line) =>
    line !== "" && !line.startsWith("-----")
  );
}
