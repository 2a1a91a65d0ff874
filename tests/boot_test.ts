// seatOf(): which processes may take back a predecessor's leases.

import assert from "node:assert/strict";
import { seatOf } from "../lib/boot.ts";

const addr = { hostname: "0.0.0.0", port: 8000 };

Deno.test("seatOf(): a KV file has a seat; a KV Connect URL only with a host name; :memory:, Deploy and port 0 none", () => {
  assert.equal(seatOf("/srv/kv", addr), " 0.0.0.0:8000 /srv/kv");
  assert.equal(seatOf("/srv/kv", addr, "web-1"), "web-1 0.0.0.0:8000 /srv/kv");
  assert.equal(seatOf("http://kv:4512", addr), null, "which host?");
  assert.equal(
    seatOf("http://kv:4512", addr, "web-1"),
    "web-1 0.0.0.0:8000 http://kv:4512",
  );
  assert.equal(seatOf(":memory:", addr, "web-1"), null);
  assert.equal(seatOf("", addr, "web-1"), null);
  assert.equal(seatOf("/srv/kv", { ...addr, port: 0 }), null);
});
