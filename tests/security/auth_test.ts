import assert from "node:assert/strict";
import {
  checkAdminToken,
  isAuthorized,
  isCrossSite,
  requestToken,
  timingSafeEqual,
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
