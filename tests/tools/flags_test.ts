import assert from "node:assert/strict";
import { productionFlags } from "../../tools/flags.ts";
import { loadConfig } from "../../lib/config/config.ts";
import { SECRET } from "../_helpers.ts";

Deno.test("productionFlags() adds each FORWARD_URLS host to --allow-net, once", () => {
  const [net] = productionFlags(loadConfig({
    GITHUB_WEBHOOK_SECRET: SECRET,
    IP_ALLOWLIST: "off",
    FORWARD_URLS:
      "https://staging.example.com/webhook,http://10.0.0.5:8000/hook,http://0.0.0.0:8000/x",
  }));
  assert.equal(
    net,
    "--allow-net=0.0.0.0:8000,staging.example.com:443,10.0.0.5:8000",
  );
});
