import assert from "node:assert/strict";
import {
  MAX_HOOKS,
  sameHooks,
  validateHooks,
} from "../../lib/github/meta_list.ts";

const HOOKS = ["192.30.252.0/22", "185.199.108.0/22", "2a0a:a440::/29"];

Deno.test("validateHooks() accepts a list of valid, narrow CIDRs", () => {
  const result = validateHooks({ hooks: HOOKS, web: ["1.2.3.0/24"] });
  assert.ok(result.ok);
  assert.deepEqual(result.hooks, HOOKS);
  assert.deepEqual(result.cidrs.map((c) => c.text), HOOKS);
});

Deno.test("validateHooks() accepts exactly /8, /24 and 1,000 entries", () => {
  assert.equal(
    validateHooks({ hooks: ["10.0.0.0/8", "2001:d00::/24"] }).ok,
    true,
  );
  const many = Array.from(
    { length: MAX_HOOKS },
    (_, i) => `10.${i >> 8}.${i & 255}.0/24`,
  );
  assert.equal(validateHooks({ hooks: many }).ok, true);
});

Deno.test("validateHooks() says why it refuses an answer", async (t) => {
  const many = Array.from(
    { length: MAX_HOOKS + 1 },
    (_, i) => `10.${i >> 8}.${i & 255}.0/24`,
  );
  const cases: [string, unknown, string][] = [
    ["null", null, "answer is not a JSON object"],
    ["an array", [HOOKS], "answer is not a JSON object"],
    ["a string", "hooks", "answer is not a JSON object"],
    ["hooks missing", { web: HOOKS }, "hooks is missing"],
    ["hooks not an array", { hooks: "10.0.0.0/8" }, "hooks is not an array"],
    ["hooks empty", { hooks: [] }, "hooks is empty"],
    [
      "1,001 entries",
      { hooks: many },
      "hooks has 1001 entries, more than 1000",
    ],
    [
      "an entry not a string",
      { hooks: [...HOOKS, 42] },
      "hooks[3] is not a string",
    ],
    [
      "an invalid CIDR",
      { hooks: ["192.30.252.0/33"] },
      'hooks[0] is not a valid CIDR: "192.30.252.0/33"',
    ],
    [
      "0.0.0.0/0",
      { hooks: ["0.0.0.0/0"] },
      "hooks[0] 0.0.0.0/0 is wider than /8",
    ],
    [
      "10.0.0.0/7",
      { hooks: ["10.0.0.0/7"] },
      "hooks[0] 10.0.0.0/7 is wider than /8",
    ],
    ["::/0", { hooks: ["::/0"] }, "hooks[0] ::/0 is wider than /24"],
    [
      "2001::/16",
      { hooks: ["2001::/16"] },
      "hooks[0] 2001::/16 is wider than /24",
    ],
    [
      "an IPv4-mapped /96",
      { hooks: ["::ffff:0.0.0.0/96"] },
      "hooks[0] ::ffff:0.0.0.0/96 is wider than /8 (IPv4-mapped)",
    ],
  ];
  for (const [name, value, error] of cases) {
    await t.step(name, () => {
      assert.deepEqual(validateHooks(value), { ok: false, error });
    });
  }
});

Deno.test("validateHooks() cuts a long invalid entry in its error", () => {
  const result = validateHooks({ hooks: ["x".repeat(500)] });
  assert.equal(result.ok, false);
  assert.ok(!result.ok && result.error.length < 100);
});

Deno.test("sameHooks() compares entries in order", () => {
  assert.equal(sameHooks(HOOKS, [...HOOKS]), true);
  assert.equal(sameHooks(null, HOOKS), false);
  assert.equal(sameHooks(HOOKS, HOOKS.slice(1)), false);
  assert.equal(sameHooks(HOOKS, [...HOOKS].reverse()), false);
});
