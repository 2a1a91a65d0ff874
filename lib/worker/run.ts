/**
 * Running one leased delivery: its body (from the accepting request's memory,
 * or read back from the store), the payload decoded from it, then its
 * handlers, to a result. It records nothing: `outcome.ts` commits the result.
 *
 * What runs the handlers themselves — the context, the routing to
 * `event` / `event.action` / `*`, the timeout — is one function,
 * {@link runHandlerJob}, whose input ({@link HandlerJob}) and output
 * (`DispatchResult`) are plain data, so that it can run on the far side of a
 * `postMessage` (a Worker isolate) with a host built there.
 *
 * @module
 */

import {
  type DispatchResult,
  type HandlerRegistry,
  runHandlers,
} from "../dispatch.ts";
import type { Logger } from "../ops/log.ts";
import type { Deadlines } from "../_util/deadline.ts";
import { describeError } from "../_util/errors.ts";
import { decodePayload } from "../http/payload.ts";
import type { DeliveryRecord } from "../store/types.ts";
import type { DeliveryStore } from "../store/store.ts";

/** What the accepting request already holds of a delivery (the fast path). */
export interface LocalDelivery {
  /** The raw body bytes. */
  body: Uint8Array<ArrayBuffer>;
  /** The payload, when the receiver already parsed it (small bodies). */
  payload?: Record<string, unknown> | undefined;
}

/** One run of a delivery's handlers, as plain (structured-cloneable) data. */
export interface HandlerJob {
  /** `X-GitHub-Event`. */
  event: string;
  /** `payload.action`, when present. */
  action: string | undefined;
  /** `X-GitHub-Delivery`. */
  delivery: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** The parsed payload. */
  payload: unknown;
  /** `HANDLER_TIMEOUT_MS`, for each handler. */
  timeoutMs: number;
}

/**
 * Where handlers run: what is not data and belongs to that place (in a
 * Worker isolate it would be built there: its registry, its deadlines, a
 * signal aborted by a message).
 */
export interface HandlerHost {
  registry: HandlerRegistry;
  /** Handler timeouts share these. */
  deadlines: Deadlines;
  /** Aborts every handler early (shutdown). */
  signal: AbortSignal;
}

/**
 * Runs the handlers of one job, each bounded by its timeout: plain data in,
 * plain data out, and it never rejects. `log` is the delivery's logger on
 * the host's side (in an isolate, one posting its lines back).
 *
 * @example
 * ```ts
 * import { runHandlerJob } from "./run.ts";
 * import { createDeadlines } from "../_util/deadline.ts";
 * import { NULL_LOGGER } from "../ops/log.ts";
 * const job = { event: "ping", action: undefined, delivery: "d1", attempt: 1, payload: {}, timeoutMs: 1000 };
 * const host = { registry: { ping: { default() {} } }, deadlines: createDeadlines(), signal: new AbortController().signal };
 * (await runHandlerJob(job, NULL_LOGGER, host)).outcome; // "ok"
 * ```
 */
export function runHandlerJob(
  job: HandlerJob,
  log: Logger,
  host: HandlerHost,
): Promise<DispatchResult> {
  return runHandlers({
    registry: host.registry,
    event: job.event,
    action: job.action,
    delivery: job.delivery,
    attempt: job.attempt,
    payload: job.payload,
    log,
    timeoutMs: job.timeoutMs,
    deadlines: host.deadlines,
    signal: host.signal,
  });
}

/** What {@link runDelivery} needs beside the delivery: one per worker. */
export interface RunContext extends HandlerHost {
  store: DeliveryStore;
  /** `HANDLER_TIMEOUT_MS`. */
  timeoutMs: number;
}

/**
 * The payload decoded from the body the request holds, or else from the
 * body read back from the store. Throws when it cannot be read or decoded.
 */
async function decodeBody(
  record: DeliveryRecord,
  local: LocalDelivery | undefined,
  store: DeliveryStore,
): Promise<Record<string, unknown>> {
  // A large body was only scanned on receipt: parsing it can take tens of
  // milliseconds, so let the accepting request's 202 go out first.
  if (local !== undefined) await new Promise((r) => setTimeout(r, 0));
  const body = local?.body ?? await store.readBody(record);
  const decoded = decodePayload(body, record.kind);
  if (!decoded.ok) throw new Error(decoded.message);
  return decoded.payload;
}

/**
 * Runs one leased delivery to a result. `local` carries what the accepting
 * request already holds, so that the durable fast path reads nothing back
 * from KV. A body that cannot be read or decoded is an `error` of the
 * `(load)` step; it never rejects.
 */
export async function runDelivery(
  record: DeliveryRecord,
  local: LocalDelivery | undefined,
  log: Logger,
  context: RunContext,
): Promise<DispatchResult> {
  const start = performance.now();
  try {
    const payload = local?.payload ??
      await decodeBody(record, local, context.store);
    return await runHandlerJob(
      {
        event: record.event,
        action: record.action,
        delivery: record.id,
        attempt: record.attempts,
        payload,
        timeoutMs: context.timeoutMs,
      },
      log,
      context,
    );
  } catch (err) {
    return {
      outcome: "error",
      ms: performance.now() - start,
      error: describeError(err),
      handler: "(load)",
    };
  }
}
