/**
 * The server's side of `ctx.github`: performs the calls handlers make
 * (`client.ts`), with the credentials only the server holds — an
 * installation access token for the delivery's installation when an App is
 * configured (one cache and one mint per installation for the whole
 * process, in `app_auth.ts`), the App's JWT for `ctx.github.app`, else
 * `GITHUB_TOKEN`, else none. Rate limits are waited out by the REST client
 * (`rest.ts`) as long as the wait ends before the handler's deadline.
 *
 * It never returns or logs a credential: answers and errors go back as
 * plain data.
 *
 * @module
 */

import { errorMessage } from "../_util/errors.ts";
import type { GitHubCall, GitHubCallResult } from "./client.ts";
import {
  createRestClient,
  GitHubApiError,
  type RestClient,
  type RestClientOptions,
} from "./rest.ts";
import type { HookTarget } from "./hook_deliveries.ts";
import type { AppAuth } from "./app_auth.ts";

/** Options of {@link createGitHubBroker}. */
export interface BrokerOptions {
  /** `GITHUB_API_URL`. @default https://api.github.com */
  baseUrl?: string | URL;
  /** The App's credentials, when `GITHUB_APP_ID` is set. */
  app?: AppAuth | undefined;
  /** `GITHUB_TOKEN`, used when there is no installation token to use. */
  token?: string | undefined;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  /** The `User-Agent`. @default "hookgate" */
  userAgent?: string;
}

/** Performs `ctx.github` calls for the server. */
export interface GitHubBroker {
  /** Whether an App is configured (`ctx.github.app` exists). */
  readonly hasApp: boolean;
  /**
   * Performs one call before `deadline` (ms since the epoch: a rate-limit
   * wait past it fails the call); `signal` aborts it. Never rejects.
   */
  perform(
    call: GitHubCall,
    signal: AbortSignal,
    deadline: number,
  ): Promise<GitHubCallResult>;
  /** An installation was deleted or suspended: drop its cached token. */
  forget(installation: number): void;
  /**
   * The token `ctx.github` would call with for a delivery of
   * `installation`: its installation token (App), else `GITHUB_TOKEN`;
   * undefined when there is none. Given to hook scripts as `GITHUB_TOKEN`.
   * Rejects when an installation token cannot be minted.
   */
  tokenFor(
    installation: number | undefined,
    signal: AbortSignal,
  ): Promise<string | undefined>;
  /**
   * A REST client that may administer `hook` (list and redeliver its
   * deliveries, for reconciliation): the App's JWT for the App's hook; for a
   * repository or organization hook `GITHUB_TOKEN`, else the installation
   * token of `installation`. `null` when there are no such credentials.
   */
  hookClient(
    hook: HookTarget,
    installation: number | undefined,
    signal: AbortSignal,
  ): RestClient | null;
}

/**
 * A failure as plain data: a `GitHubApiError`'s kind, status and GitHub's
 * message; anything else as an invalid call with its message.
 *
 * @example
 * ```ts
 * import { plainError } from "./broker.ts";
 * plainError(new TypeError("no {owner} in params")).kind; // "invalid"
 * ```
 */
export function plainError(
  err: unknown,
): Extract<GitHubCallResult, { ok: false }>["error"] {
  if (err instanceof GitHubApiError) {
    return {
      message: err.message,
      kind: err.kind,
      status: err.status,
      githubMessage: err.githubMessage,
      data: err.data,
    };
  }
  return { message: errorMessage(err), kind: "invalid" };
}

/**
 * Makes the broker. Credentials stay inside it.
 *
 * @example
 * ```ts
 * import { createGitHubBroker } from "./broker.ts";
 * const broker = createGitHubBroker({ token: undefined });
 * broker.hasApp; // false
 * ```
 */
export function createGitHubBroker(options: BrokerOptions): GitHubBroker {
  const { app, token } = options;
  const base: RestClientOptions = {
    ...(options.baseUrl ? { baseUrl: options.baseUrl } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    userAgent: options.userAgent ?? "hookgate",
  };

  /** The REST client with the credentials `call` asks for. */
  function clientFor(call: GitHubCall, signal: AbortSignal) {
    if (call.as === "app") {
      if (!app) throw new TypeError("ctx.github.app needs GITHUB_APP_ID");
      return createRestClient({
        ...base,
        getToken: ({ fresh }) => app.jwt({ fresh }),
      });
    }
    const id = call.installation;
    if (app && typeof id === "number" && Number.isSafeInteger(id)) {
      return createRestClient({
        ...base,
        getToken: ({ fresh }) => app.installationToken(id, { signal, fresh }),
      });
    }
    return createRestClient({ ...base, token });
  }

  return {
    hasApp: app !== undefined,
    hookClient(hook, installation, signal) {
      if (hook.kind === "app") {
        return app
          ? createRestClient({
            ...base,
            getToken: ({ fresh }) => app.jwt({ fresh }),
          })
          : null;
      }
      if (token) return createRestClient({ ...base, token });
      if (!app || installation === undefined) return null;
      return createRestClient({
        ...base,
        getToken: ({ fresh }) =>
          app.installationToken(installation, { signal, fresh }),
      });
    },
    async tokenFor(installation, signal) {
      if (app && installation !== undefined) {
        return await app.installationToken(installation, { signal });
      }
      return token;
    },
    async perform(call, signal, deadline) {
      try {
        const client = clientFor(call, signal);
        const options = { signal, deadline };
        if (call.kind === "paginate") {
          const items = await client.paginate(call.route, call.params, options);
          return { ok: true, items };
        }
        const answer = await client.request(call.route, call.params, options);
        return {
          ok: true,
          answer: {
            status: answer.status,
            headers: [...answer.headers],
            data: answer.data,
            url: answer.url,
          },
        };
      } catch (err) {
        return { ok: false, error: plainError(err) };
      }
    },
    forget(installation) {
      app?.forget(installation);
    },
  };
}
