/**
 * GitHub App authentication: the App's RS256 JWT (made here with WebCrypto,
 * cached and renewed) and installation access tokens minted with
 * `POST /app/installations/{id}/access_tokens`, cached per installation
 * until a few minutes before their `expires_at`, one mint shared by
 * concurrent callers. The local clock is corrected once from the `Date`
 * header of GitHub's first answer, so a skewed host still makes JWTs GitHub
 * accepts.
 *
 * It does not read the key (see `app_key.ts`), the environment or files,
 * make API calls other than the mint (callers pass {@link AppAuth.jwt} or
 * {@link AppAuth.installationToken} to `createRestClient`'s `getToken`), or
 * log. No token or JWT is ever part of an error message.
 *
 * @module
 */

import { APP_KEY_ALGORITHM } from "./app_key.ts";
import {
  createRestClient,
  DEFAULT_API_URL,
  GitHubApiError,
  type RestClient,
} from "./rest.ts";

/** Options of {@link createAppAuth}. */
export interface AppAuthOptions {
  /** The App's ID (or client ID): the JWT's `iss`. */
  appId: string;
  /** The App's private key, from `importAppKey()`. */
  key: CryptoKey;
  /** The REST API root. @default DEFAULT_API_URL */
  baseUrl?: string | URL;
  /** The `fetch` used for mints. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** The local clock, epoch ms. @default Date.now */
  now?: () => number;
  /** The `User-Agent` of mints. @default "hookgate" */
  userAgent?: string;
  /** A token is renewed this long before its `expires_at`. @default 300000 */
  renewBeforeMs?: number;
  /** Waits out a rate limit on a mint. @default a timer */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** A GitHub App's credentials; see {@link createAppAuth}. */
export interface AppAuth {
  /**
   * The App's JWT (RS256; `iss` = appId, `iat` = now − 60 s, `exp` = iat +
   * 10 min), cached and renewed a minute before it runs out; `fresh: true`
   * makes a new one (GitHub refused the last).
   */
  jwt(options?: { fresh?: boolean }): Promise<string>;
  /**
   * An installation access token: minted under the JWT, cached until
   * `renewBeforeMs` before its `expires_at`; concurrent callers share one
   * mint; `fresh: true` drops the cached one first (it was refused). Rejects
   * with a {@link GitHubApiError} (status, GitHub's message) on failure, or
   * with the signal's reason when it aborts.
   */
  installationToken(
    id: number,
    options?: { signal?: AbortSignal | undefined; fresh?: boolean },
  ): Promise<string>;
  /** Drops an installation's cached token (installation deleted or suspended). */
  forget(id: number): void;
  /** How far GitHub's clock is ahead of the local one, in ms (0 until measured). */
  readonly skewMs: number;
}

/** A JWT lasts this long after its `iat` (GitHub's limit: 10 minutes). */
const JWT_LIFETIME_S = 600;
/** `iat` is set this far in the past, for clocks that drift. */
const JWT_BACKDATE_S = 60;
/** A JWT is renewed when less than this is left of it. */
const JWT_RENEW_MS = 60_000;
/** A measured skew this small (the `Date` header's resolution) is ignored. */
const SKEW_NOISE_MS = 1500;
const MINT_ROUTE = "POST /app/installations/{installation_id}/access_tokens";

interface CachedJwt {
  promise: Promise<string>;
  expiresAtMs: number;
  skewMs: number;
}

interface CachedToken {
  token: string;
  expiresAtMs: number;
}

interface Mint {
  promise: Promise<string>;
  controller: AbortController;
  waiters: number;
}

interface AuthState {
  skewMs: number | undefined;
  jwt: CachedJwt | undefined;
  tokens: Map<number, CachedToken>;
  mints: Map<number, Mint>;
}

/**
 * Creates an {@link AppAuth}. Nothing is signed or fetched until asked.
 *
 * @example
 * ```ts
 * import { createAppAuth } from "./app_auth.ts";
 * const { privateKey } = await crypto.subtle.generateKey(
 *   { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) },
 *   false,
 *   ["sign", "verify"],
 * );
 * const auth = createAppAuth({
 *   appId: "12345",
 *   key: privateKey,
 *   fetch: () => Promise.resolve(Response.json({ token: "ghs_x", expires_at: "2999-01-01T00:00:00Z" }, { status: 201 })),
 * });
 * (await auth.jwt()).split(".").length; // 3
 * await auth.installationToken(42); // "ghs_x"
 * ```
 */
export function createAppAuth(options: AppAuthOptions): AppAuth {
  const { appId, key } = options;
  if (!/^[\x21-\x7e]{1,200}$/.test(appId)) {
    throw new TypeError(
      "Cannot create App auth as 'appId' must be an App ID or client ID",
    );
  }
  const localNow = options.now ?? Date.now;
  const renewBeforeMs = options.renewBeforeMs ?? 5 * 60_000;
  const baseFetch = options.fetch ?? globalThis.fetch;
  const state: AuthState = {
    skewMs: undefined,
    jwt: undefined,
    tokens: new Map(),
    mints: new Map(),
  };
  const time = () => localNow() + (state.skewMs ?? 0);

  /** fetch, noting GitHub's clock from the first answer with a `Date`. */
  const clockFetch: typeof fetch = async (input, init) => {
    const response = await baseFetch(input, init);
    if (state.skewMs === undefined) {
      const date = Date.parse(response.headers.get("date") ?? "");
      if (Number.isFinite(date)) state.skewMs = measureSkew(date, localNow());
    }
    return response;
  };

  const jwt = (jwtOptions: { fresh?: boolean } = {}): Promise<string> => {
    const cached = state.jwt;
    const skewMs = state.skewMs ?? 0;
    if (
      !jwtOptions.fresh && cached !== undefined && cached.skewMs === skewMs &&
      cached.expiresAtMs - time() > JWT_RENEW_MS
    ) {
      return cached.promise;
    }
    const iat = Math.floor(time() / 1000) - JWT_BACKDATE_S;
    const exp = iat + JWT_LIFETIME_S;
    const promise = signJwt(key, { iat, exp, iss: issuer(appId) });
    state.jwt = { promise, expiresAtMs: exp * 1000, skewMs };
    promise.catch(() => {
      if (state.jwt?.promise === promise) state.jwt = undefined;
    });
    return promise;
  };

  const rest = createRestClient({
    baseUrl: options.baseUrl ?? DEFAULT_API_URL,
    getToken: ({ fresh }) => jwt({ fresh }),
    fetch: clockFetch,
    now: time,
    userAgent: options.userAgent ?? "hookgate",
    ...(options.sleep ? { sleep: options.sleep } : {}),
  });

  const startMint = (id: number): Mint => {
    const controller = new AbortController();
    const mint: Mint = {
      controller,
      waiters: 0,
      promise: mintToken(rest, id, controller.signal).then((cached) => {
        if (state.mints.get(id) === mint) {
          state.tokens.set(id, cached);
          pruneExpired(state.tokens, time());
        }
        return cached.token;
      }).finally(() => {
        if (state.mints.get(id) === mint) state.mints.delete(id);
      }),
    };
    state.mints.set(id, mint);
    return mint;
  };

  return {
    jwt,
    installationToken: (id, tokenOptions = {}) => {
      checkInstallationId(id);
      if (tokenOptions.fresh) state.tokens.delete(id);
      const cached = state.tokens.get(id);
      if (cached && cached.expiresAtMs - time() > renewBeforeMs) {
        return Promise.resolve(cached.token);
      }
      const { signal } = tokenOptions;
      if (signal?.aborted) return Promise.reject(signal.reason);
      return join(state.mints.get(id) ?? startMint(id), signal);
    },
    forget: (id) => {
      state.tokens.delete(id);
      state.mints.delete(id);
    },
    get skewMs() {
      return state.skewMs ?? 0;
    },
  };
}

/**
 * GitHub's clock minus the local one, from a `Date` header's time; 0 when
 * within the header's one-second resolution.
 *
 * @example
 * ```ts
 * import { measureSkew } from "./app_auth.ts";
 * measureSkew(Date.parse("2025-06-02T12:10:00Z"), Date.parse("2025-06-02T12:00:00.400Z")); // 599600
 * measureSkew(Date.parse("2025-06-02T12:00:00Z"), Date.parse("2025-06-02T12:00:00.900Z")); // 0
 * ```
 */
export function measureSkew(githubMs: number, localMs: number): number {
  const skew = githubMs - localMs;
  return Math.abs(skew) < SKEW_NOISE_MS ? 0 : skew;
}

/**
 * Signs a JWT with RS256: `base64url(header).base64url(claims).signature`.
 *
 * @example
 * ```ts
 * import { signJwt } from "./app_auth.ts";
 * const { privateKey } = await crypto.subtle.generateKey(
 *   { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) },
 *   false,
 *   ["sign"],
 * );
 * const jwt = await signJwt(privateKey, { iss: "1", iat: 0, exp: 600 });
 * jwt.split(".")[0]; // "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9"
 * ```
 */
export async function signJwt(
  key: CryptoKey,
  claims: Readonly<Record<string, unknown>>,
): Promise<string> {
  const encoder = new TextEncoder();
  const head = base64Url(
    encoder.encode(JSON.stringify({ alg: "RS256", typ: "JWT" })),
  );
  const body = base64Url(encoder.encode(JSON.stringify(claims)));
  const input = `${head}.${body}`;
  const signature = await crypto.subtle.sign(
    APP_KEY_ALGORITHM.name,
    key,
    encoder.encode(input),
  );
  return `${input}.${base64Url(new Uint8Array(signature))}`;
}

/** Bytes in base64url, unpadded. */
function base64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

/** A numeric App ID as a number (as Octokit sends it), a client ID as text. */
function issuer(appId: string): string | number {
  return /^[1-9][0-9]{0,15}$/.test(appId) ? Number(appId) : appId;
}

function checkInstallationId(id: number): void {
  if (!Number.isSafeInteger(id) || id <= 0) {
    throw new TypeError(
      `Cannot mint a token as 'id' must be a positive integer: current value is ${id}`,
    );
  }
}

/** One mint: GitHub's answer checked, its expiry read. */
async function mintToken(
  rest: RestClient,
  id: number,
  signal: AbortSignal,
): Promise<CachedToken> {
  const answer = await rest.request(MINT_ROUTE, { installation_id: id }, {
    signal,
  });
  const data = answer.data as { token?: unknown; expires_at?: unknown } | null;
  const token = data?.token;
  const expiresAtMs = Date.parse(String(data?.expires_at));
  if (
    typeof token !== "string" || token === "" || !Number.isFinite(expiresAtMs)
  ) {
    throw new GitHubApiError(
      `GitHub's answer to POST /app/installations/${id}/access_tokens has no token and expires_at`,
      { kind: "invalid", status: answer.status, headers: answer.headers },
    );
  }
  return { token, expiresAtMs };
}

/**
 * Waits for a shared mint; a caller's abort rejects that caller alone, and
 * the mint itself is aborted once every caller has gone.
 */
function join(mint: Mint, signal: AbortSignal | undefined): Promise<string> {
  if (signal === undefined) {
    mint.waiters = Number.POSITIVE_INFINITY;
    return mint.promise;
  }
  mint.waiters++;
  return new Promise<string>((resolve, reject) => {
    const onAbort = () => {
      if (--mint.waiters === 0) mint.controller.abort(signal.reason);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    mint.promise.then(resolve, reject).finally(() =>
      signal.removeEventListener("abort", onAbort)
    );
  });
}

/** Drops cached tokens past their expiry. */
function pruneExpired(tokens: Map<number, CachedToken>, now: number): void {
  for (const [id, cached] of tokens) {
    if (cached.expiresAtMs <= now) tokens.delete(id);
  }
}
