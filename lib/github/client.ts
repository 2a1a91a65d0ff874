/**
 * `ctx.github` as a handler sees it: `request`, `paginate` and, with an App,
 * `app` — each call handed as plain data to a {@link GitHubTransport}, which
 * performs it where the credentials are (`broker.ts`, on the server's side
 * of a Worker isolate's `postMessage`), so that no token, JWT or key ever
 * enters a handler's isolate. Answers and errors come back as plain data and
 * are rebuilt here: a `Headers` object, a `GitHubApiError` with `status` and
 * GitHub's message.
 *
 * It performs no I/O and holds no credential.
 *
 * @module
 */

import {
  GitHubApiError,
  type GitHubApiErrorKind,
  type RestResponse,
  type RouteParams,
} from "./rest.ts";

/** Whose credentials a call uses. */
export type GitHubIdentity = "installation" | "app";

/** One call of `ctx.github`, as plain (structured-cloneable) data. */
export interface GitHubCall {
  kind: "request" | "paginate";
  /** `"METHOD /path/{name}"`, as in GitHub's REST docs. */
  route: string;
  params?: RouteParams | undefined;
  /** `installation`: the delivery's installation token, or `GITHUB_TOKEN`. */
  as: GitHubIdentity;
  /** `payload.installation.id`, when the delivery has one. */
  installation?: number | undefined;
}

/** A failed call, as plain data. */
export interface GitHubCallError {
  message: string;
  kind: GitHubApiErrorKind;
  status?: number | undefined;
  githubMessage?: string | undefined;
  data?: unknown;
}

/** A call's outcome, as plain data (headers as pairs). */
export type GitHubCallResult =
  | {
    ok: true;
    /** `request`: the answer. `paginate`: the items. */
    answer?: {
      status: number;
      headers: [string, string][];
      data: unknown;
      url: string;
    };
    items?: unknown[];
  }
  | { ok: false; error: GitHubCallError };

/** Performs a call where the credentials are; never rejects. */
export type GitHubTransport = (
  call: GitHubCall,
  signal: AbortSignal,
) => Promise<GitHubCallResult>;

/** What `ctx.github.request` and `paginate` look like. */
export interface GitHubRequester {
  /**
   * One call of `route`; resolves `{ status, headers, data }` for a 2xx,
   * rejects with a `GitHubApiError` (`status`, `githubMessage`) otherwise.
   */
  request<T = unknown>(
    route: string,
    params?: RouteParams,
  ): Promise<RestResponse<T>>;
  /** Every item of every page, following `Link: rel="next"`. */
  paginate<T = unknown>(route: string, params?: RouteParams): Promise<T[]>;
}

/** `ctx.github`. */
export interface GitHub extends GitHubRequester {
  /** The App itself (JWT-authenticated), when an App is configured. */
  app?: GitHubRequester;
}

/** Options of {@link createGitHub}. */
export interface GitHubOptions {
  transport: GitHubTransport;
  /** The handler's signal: aborts every call. */
  signal: AbortSignal;
  /** `payload.installation.id`, when the delivery has one. */
  installation?: number | undefined;
  /** Whether an App is configured (`ctx.github.app` exists). */
  hasApp: boolean;
}

/**
 * Rebuilds the error of a failed call, as `rest.ts` made it.
 *
 * @example
 * ```ts
 * import { callError } from "./client.ts";
 * const err = callError({ message: "POST /x: GitHub answered 404: Not Found", kind: "status", status: 404, githubMessage: "Not Found" });
 * err.status; // 404
 * ```
 */
export function callError(error: GitHubCallError): GitHubApiError {
  return new GitHubApiError(error.message, {
    kind: error.kind,
    status: error.status,
    githubMessage: error.githubMessage,
    data: error.data,
  });
}

/**
 * Makes `ctx.github` over a transport.
 *
 * @example
 * ```ts
 * import { createGitHub } from "./client.ts";
 * const github = createGitHub({
 *   transport: () => Promise.resolve({ ok: true, answer: { status: 200, headers: [], data: { id: 1 }, url: "" } }),
 *   signal: new AbortController().signal,
 *   hasApp: false,
 * });
 * (await github.request("GET /user")).data; // { id: 1 }
 * ```
 */
export function createGitHub(options: GitHubOptions): GitHub {
  const { transport, signal, installation } = options;
  const requester = (as: GitHubIdentity): GitHubRequester => {
    const call = async (
      kind: GitHubCall["kind"],
      route: string,
      params?: RouteParams,
    ) => {
      if (typeof route !== "string") {
        throw new TypeError("ctx.github: the route must be a string");
      }
      signal.throwIfAborted();
      const result = await transport(
        { kind, route, params, as, installation },
        signal,
      );
      if (!result.ok) throw callError(result.error);
      return result;
    };
    return {
      async request<T>(route: string, params?: RouteParams) {
        const { answer } = await call("request", route, params);
        if (!answer) throw new TypeError("ctx.github: an answer went missing");
        return {
          status: answer.status,
          headers: new Headers(answer.headers),
          data: answer.data as T,
          url: answer.url,
        };
      },
      async paginate<T>(route: string, params?: RouteParams) {
        const { items } = await call("paginate", route, params);
        return (items ?? []) as T[];
      },
    };
  };
  const github: GitHub = requester("installation");
  if (options.hasApp) github.app = requester("app");
  return github;
}

/**
 * Where `ctx.github`'s calls are performed: the server's broker
 * (`broker.ts`), or, in a handler isolate, messages to it.
 */
export interface GitHubHost {
  /** Whether an App is configured (`ctx.github.app` exists). */
  readonly hasApp: boolean;
  /** Performs one call before `deadline` (ms since the epoch); never rejects. */
  perform(
    call: GitHubCall,
    signal: AbortSignal,
    deadline: number,
  ): Promise<GitHubCallResult>;
  /** An installation was deleted or suspended: drop its cached token. */
  forget(installation: number): void;
}

/**
 * The host where none is wired (unit tests of handlers): every call fails
 * saying so, and nothing reaches the network.
 */
export const NO_GITHUB: GitHubHost = {
  hasApp: false,
  perform: () =>
    Promise.resolve({
      ok: false,
      error: {
        message: "ctx.github is not available here (no GitHub host is wired)",
        kind: "invalid",
      },
    }),
  forget: () => {},
};
