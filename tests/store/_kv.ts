// A :memory: KV for one test, closed by `using`, with its lock-safe wrapper.

import { lockSafe, type LockSafeKv } from "../../lib/store/kv.ts";

/** `using kv = await memoryKv()`: `raw` for setup and checks, `safe` for the code under test. */
export async function memoryKv(): Promise<
  { raw: Deno.Kv; safe: LockSafeKv; [Symbol.dispose](): void }
> {
  const raw = await Deno.openKv(":memory:");
  return { raw, safe: lockSafe(raw), [Symbol.dispose]: () => raw.close() };
}
