import assert from "node:assert/strict";
import { parseCidr, parseIp } from "../../lib/security/cidr.ts";
import {
  checkAdminToken,
  clientKey,
  createAdminAuth,
  isAuthorized,
  isCrossSite,
  requestToken,
  timingSafeEqual,
  tooManyGuesses,
  unauthorized,
} from "../../lib/security/auth.ts";

function withAuthorization(value: string | null): Request {
  return new Request("http://hookgate.test/deliveries", {
    headers: value === null ? {} : { authorization: value },
  });
}

const basic = (credentials: string) => `Basic ${btoa(credentials)}`;

Deno.test("timingSafeEqual() is true only for the same string", async (t) => {
  const table: [string, string, boolean][] = [
    ["abc", "abc", true],
    ["", "", true],
    ["ünïcödé", "ünïcödé", true],
    ["abc", "abd", false],
    ["abc", "ABC", false],
    ["abc", "abcd", false],
    ["abcd", "abc", false],
    ["abc", "", false],
    ["", "abc", false],
    // Same bytes repeated: a shorter string must not match by wrapping round.
    ["abcabc", "abc", false],
    ["aa", "a", false],
  ];
  for (const [a, b, equal] of table) {
    await t.step(`${JSON.stringify(a)} vs ${JSON.stringify(b)}`, () => {
      assert.equal(timingSafeEqual(a, b), equal);
    });
  }
});

Deno.test("requestToken() reads a Bearer token or a Basic password", async (t) => {
  const table: [string, string | null, string | null][] = [
    ["no header", null, null],
    ["Bearer", "Bearer s3cret", "s3cret"],
    ["Bearer, scheme in any case", "bEaReR s3cret", "s3cret"],
    ["Bearer, surrounding spaces trimmed", "Bearer   s3cret  ", "s3cret"],
    ["Bearer with nothing after it (Headers trims the space)", "Bearer ", null],
    ["Basic", basic("admin:s3cret"), "s3cret"],
    ["Basic, any user name", basic("x:s3cret"), "s3cret"],
    ["Basic, empty user name", basic(":s3cret"), "s3cret"],
    ["Basic, a colon in the password", basic("admin:s3:cret"), "s3:cret"],
    ["Basic without a colon", basic("s3cret"), null],
    ["Basic that is not base64", "Basic !!!", null],
    ["a scheme without a space", "Bearer", null],
    ["another scheme", "Token s3cret", null],
  ];
  for (const [name, header, token] of table) {
    await t.step(name, () => {
      assert.equal(requestToken(withAuthorization(header)), token);
    });
  }
});

Deno.test("isAuthorized() is true only for the admin token", async (t) => {
  const table: [string, string | null, boolean][] = [
    ["the Bearer token", "Bearer s3cret", true],
    ["the token as the Basic password", basic("admin:s3cret"), true],
    ["no credentials", null, false],
    ["a wrong Bearer token", "Bearer nope", false],
    ["a longer Bearer token", "Bearer s3cret!", false],
    ["the token as the Basic user name", basic("s3cret:"), false],
    ["an empty Bearer token", "Bearer ", false],
  ];
  for (const [name, header, expected] of table) {
    await t.step(name, () => {
      assert.equal(isAuthorized(withAuthorization(header), "s3cret"), expected);
    });
  }
});

Deno.test("isCrossSite() flags requests from another site", async (t) => {
  const url = new URL("http://hookgate.test/deliveries/x/replay");
  const table: [string, Record<string, string>, boolean][] = [
    ["no Origin and no Sec-Fetch-Site (curl)", {}, false],
    ["Sec-Fetch-Site: same-origin", { "sec-fetch-site": "same-origin" }, false],
    ["Sec-Fetch-Site: none (typed by the user)", {
      "sec-fetch-site": "none",
    }, false],
    ["Sec-Fetch-Site: same-site", { "sec-fetch-site": "same-site" }, true],
    ["Sec-Fetch-Site: cross-site", { "sec-fetch-site": "cross-site" }, true],
    ["Origin of this host", { origin: "http://hookgate.test" }, false],
    ["Origin of another host", { origin: "https://evil.example" }, true],
    ["Origin of this host on another port", {
      origin: "http://hookgate.test:8080",
    }, true],
    ["an Origin that is no URL", { origin: "null" }, true],
    ["same-origin fetch, Origin of another host", {
      "sec-fetch-site": "same-origin",
      origin: "https://evil.example",
    }, true],
  ];
  for (const [name, headers, expected] of table) {
    await t.step(name, () => {
      const request = new Request(url, { method: "POST", headers });
      assert.equal(isCrossSite(request, url), expected);
    });
  }
});

Deno.test("unauthorized() challenges API clients with Bearer or Basic, and the page with Basic only", () => {
  assert.deepEqual(unauthorized("api"), {
    status: 401,
    error: "unauthorized",
    message: "A valid admin token is required.",
    headers: {
      "www-authenticate": 'Bearer realm="hookgate", Basic realm="hookgate"',
    },
  });
  assert.deepEqual(unauthorized("page"), {
    status: 401,
    error: "unauthorized",
    message: "Sign in with any user name and the ADMIN_TOKEN as the password.",
    headers: {
      "www-authenticate": 'Basic realm="hookgate"',
      "cache-control": "no-store",
    },
  });
});

Deno.test("checkAdminToken() is null with the token and the 401 answer without it", () => {
  assert.equal(
    checkAdminToken(withAuthorization("Bearer s3cret"), "s3cret", "api"),
    null,
  );
  assert.equal(
    checkAdminToken(withAuthorization(basic("a:s3cret")), "s3cret", "page"),
    null,
  );
  assert.deepEqual(
    checkAdminToken(withAuthorization("Bearer nope"), "s3cret", "api"),
    unauthorized("api"),
  );
  assert.deepEqual(
    checkAdminToken(withAuthorization(null), "s3cret", "page"),
    unauthorized("page"),
  );
});

const TOKEN = "It's a Secret to Everybody";

/** A request with a credential, from `peer` (and `forwarded` hops). */
function from(
  token: string | null,
  peer = "192.0.2.1",
  forwarded?: string,
): [Request, { remoteAddr: { hostname: string } }] {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (forwarded) headers["x-forwarded-for"] = forwarded;
  const request = new Request("http://hookgate.test/deliveries", { headers });
  return [request, { remoteAddr: { hostname: peer } }];
}

function warnings() {
  const lines: Record<string, unknown>[] = [];
  return {
    lines,
    log: {
      warn: (msg: string, fields?: Record<string, unknown>) =>
        void lines.push({ msg, ...fields }),
    },
  };
}

Deno.test("createAdminAuth() answers 429 with Retry-After after 10 wrong tokens in a minute, until the window ends", () => {
  let clock = 0;
  const auth = createAdminAuth({ token: TOKEN, now: () => clock });
  for (let i = 0; i < 10; i++) {
    clock = i * 1000;
    assert.deepEqual(
      auth.check(...from(`wrong-${i}`), "api"),
      unauthorized("api"),
    );
  }
  clock = 15_400;
  assert.deepEqual(
    auth.check(...from("wrong"), "api"),
    tooManyGuesses(45),
  );
  assert.equal(
    auth.check(...from(TOKEN), "api")?.status,
    429,
    "the right token is not even compared",
  );
  assert.equal(auth.check(...from(TOKEN, "192.0.2.2"), "page"), null);
  clock = 60_000; // the window of the first wrong token ends
  assert.equal(auth.check(...from(TOKEN), "api"), null);
});

Deno.test("createAdminAuth() counts no missing credentials, and a right token clears the count", () => {
  const auth = createAdminAuth({ token: TOKEN, maxFailures: 2 });
  for (let i = 0; i < 5; i++) {
    assert.deepEqual(
      auth.check(...from(null), "page"),
      unauthorized("page"),
    );
  }
  assert.equal(auth.check(...from("wrong"), "api")?.status, 401);
  assert.equal(auth.check(...from(TOKEN), "api"), null);
  assert.equal(auth.check(...from("wrong"), "api")?.status, 401);
  assert.equal(auth.check(...from("wrong"), "api")?.status, 401);
  assert.equal(auth.check(...from("wrong"), "api")?.status, 429);
});

Deno.test("createAdminAuth() counts per client: behind trusted proxies, and per IPv6 /64", () => {
  const auth = createAdminAuth({
    token: TOKEN,
    maxFailures: 1,
    trustedProxies: [parseCidr("10.0.0.0/8")!],
  });
  const viaProxy = (client: string, token: string) =>
    auth.check(...from(token, "10.0.0.2", client), "api")?.status;
  assert.equal(viaProxy("203.0.113.1", "wrong"), 401);
  assert.equal(viaProxy("203.0.113.1", TOKEN), 429);
  assert.equal(viaProxy("203.0.113.2", TOKEN), undefined, "another client");
  // An untrusted peer's X-Forwarded-For is not believed: the peer counts.
  assert.equal(
    auth.check(...from("wrong", "198.51.100.1", "203.0.113.3"), "api")
      ?.status,
    401,
  );
  assert.equal(
    auth.check(...from(TOKEN, "198.51.100.1", "203.0.113.4"), "api")
      ?.status,
    429,
  );
  // One host holds a whole /64: its addresses share one count.
  assert.equal(
    auth.check(...from("wrong", "2001:db8::1"), "api")?.status,
    401,
  );
  assert.equal(
    auth.check(...from(TOKEN, "2001:db8::2:3"), "api")?.status,
    429,
  );
  assert.equal(
    auth.check(...from(TOKEN, "2001:db8:0:1::1"), "api"),
    null,
  );
});

Deno.test("createAdminAuth() logs wrong tokens at warn, one line per interval with how many were left out, never the token", () => {
  let clock = 0;
  const { lines, log } = warnings();
  const auth = createAdminAuth({
    token: TOKEN,
    log,
    maxFailures: 3,
    now: () => clock,
  });
  for (let i = 0; i < 1000; i++) auth.check(...from(`guess-${i}`), "api");
  assert.deepEqual(lines, [{
    msg: "admin authentication failed",
    client: "192.0.2.1",
    failures: 1,
    via: "api",
  }]);
  clock = 10_000;
  auth.check(...from("guess-x"), "api");
  assert.deepEqual(lines[1], {
    msg: "admin authentication failed",
    client: "192.0.2.1",
    failures: 3,
    limited: true,
    suppressed: 999,
  });
  assert.ok(!JSON.stringify(lines).includes("guess-"));
  assert.ok(!JSON.stringify(lines).includes(TOKEN));
});

Deno.test("createAdminAuth() remembers at most maxClients clients", () => {
  const auth = createAdminAuth({ token: TOKEN, maxFailures: 1, maxClients: 2 });
  for (const peer of ["192.0.2.1", "192.0.2.2", "192.0.2.3"]) {
    assert.equal(auth.check(...from("wrong", peer), "api")?.status, 401);
  }
  // The oldest was forgotten to make room; the newest are still limited.
  assert.equal(auth.check(...from(TOKEN, "192.0.2.1"), "api"), null);
  assert.equal(
    auth.check(...from(TOKEN, "192.0.2.3"), "api")?.status,
    429,
  );
});

Deno.test("createAdminAuth() counts a request without a TCP peer (a Unix socket) as an unknown client", () => {
  const auth = createAdminAuth({ token: TOKEN, maxFailures: 1 });
  const bare = () =>
    new Request("http://x/", { headers: { authorization: "Bearer wrong" } });
  const socket = { remoteAddr: { path: "/run/hookgate.sock" } };
  assert.equal(auth.check(bare(), socket, "api")?.status, 401);
  assert.equal(auth.check(bare(), socket, "api")?.status, 429);
});

Deno.test("clientKey() is the IPv4 address, the IPv6 /64, or unknown", () => {
  assert.equal(clientKey(parseIp("203.0.113.9")), "203.0.113.9");
  assert.equal(clientKey(parseIp("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2::/64");
  assert.equal(clientKey(null), "unknown");
});
