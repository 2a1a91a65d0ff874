// A raw TCP exchange with a real listener, for what fetch hides: repeated
// headers, bytes 0x80–0xFF, interim 100 responses, and whether the server
// closes the connection.

const encoder = new TextEncoder();

/** What a {@link rawExchange} saw. */
export interface RawAnswer {
  /** Everything the server sent, decoded as Latin-1. */
  text: string;
  /** Whether the server closed the connection (a read returned EOF). */
  closed: boolean;
  /** Milliseconds from the write to the end of the exchange. */
  ms: number;
}

/** Options of {@link rawExchange}. */
export interface RawOptions {
  /** Stop reading once the text so far matches. @default never: read to EOF */
  until?: RegExp;
  /** Give up (and close) after this long. @default 3000 */
  waitMs?: number;
}

/**
 * Sends `request` (a string, or bytes) to 127.0.0.1:`port`, then reads until
 * the server closes the connection, `until` matches, or `waitMs` pass.
 */
export async function rawExchange(
  port: number,
  request: string | Uint8Array,
  options: RawOptions = {},
): Promise<RawAnswer> {
  const { until, waitMs = 3000 } = options;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const started = Date.now();
  let text = "";
  let closed = false;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, waitMs);
  try {
    await conn.write(
      typeof request === "string" ? encoder.encode(request) : request,
    );
    const buf = new Uint8Array(4096);
    const latin1 = new TextDecoder("latin1");
    while (until === undefined || !until.test(text)) {
      const n = await conn.read(buf);
      if (n === null) {
        closed = true;
        break;
      }
      text += latin1.decode(buf.subarray(0, n));
    }
  } catch (err) {
    if (!timedOut) throw err;
  } finally {
    clearTimeout(timer);
    if (!timedOut) conn.close();
  }
  return { text, closed, ms: Date.now() - started };
}

/** A request head: the lines joined with CRLF, then the blank line. */
export function head(...lines: string[]): string {
  return lines.map((line) => line + "\r\n").join("") + "\r\n";
}
