/**
 * The shapes of a delivery as it passes from the HTTP layer to the store and
 * lives on in it: the incoming delivery, the stored record, its public
 * summary, and the header allowlist. No behaviour beyond {@link summarize}
 * (a field-by-field projection); status changes live in `lifecycle.ts`.
 *
 * @module
 */

import type { BodyKind } from "../http/payload.ts";

/** Request headers that may be stored, shown and logged; nothing else is. */
export const STORED_HEADERS = [
  "x-github-event",
  "x-github-delivery",
  "x-github-hook-id",
  "x-github-hook-installation-target-type",
  "x-github-hook-installation-target-id",
  "x-github-enterprise-host",
  "x-github-enterprise-version",
  "user-agent",
  "content-type",
  "content-length",
] as const;

/** A verified, parsed delivery, ready to be stored. */
export interface IncomingDelivery {
  /** `X-GitHub-Delivery`. */
  id: string;
  /** `X-GitHub-Event`. */
  event: string;
  /** `payload.action`, when present. */
  action: string | undefined;
  /** `X-GitHub-Hook-ID`. */
  hookId: string | undefined;
  /** `X-GitHub-Hook-Installation-Target-Type` and `-ID`. */
  target: { type: string; id: string } | undefined;
  /** The allowlisted headers ({@link STORED_HEADERS}). */
  headers: Record<string, string>;
  /** The raw body bytes the signature covers. */
  body: Uint8Array<ArrayBuffer>;
  /** How the body is encoded. */
  kind: BodyKind;
  /** Lowercase hex SHA-256 of `body`, for duplicate detection. */
  digest: string;
  /** Receive time, ms since the epoch. */
  receivedAt: number;
  /**
   * The parsed payload when the receiver already parsed it (small bodies),
   * handed to a handler run in this process; never stored.
   */
  payload?: Record<string, unknown> | undefined;
  /** `payload.repository.full_name` and `payload.sender.login`, for listings. */
  repository: string | undefined;
  sender: string | undefined;
  /**
   * The `SERIALIZE_BY` key (`owner/name`, or `owner/name` and a branch):
   * deliveries with one key run one at a time, in the order they were
   * stored. @default not ordered
   */
  orderKey?: string | undefined;
  /**
   * The receiving request's span as a W3C `traceparent` (when tracing is
   * on): the worker's runs are linked to it. @default not traced
   */
  trace?: string | undefined;
}

/** The statuses of the contract. */
export type DeliveryStatus =
  | "queued"
  | "running"
  | "done"
  | "failed"
  | "dead"
  | "skipped";

/** The fields a record keeps of the {@link IncomingDelivery} it was made from. */
export type KeptFields =
  | "id"
  | "event"
  | "action"
  | "hookId"
  | "target"
  | "headers"
  | "repository"
  | "sender"
  | "kind"
  | "digest"
  | "receivedAt"
  | "orderKey"
  | "trace";

/**
 * What is stored of one delivery: the {@link KeptFields} of the incoming
 * delivery (never its body or parsed payload) and the state of its life.
 */
export interface DeliveryRecord extends Pick<IncomingDelivery, KeptFields> {
  /** The body's length in bytes. */
  size: number;
  /** Key of the body chunks. */
  upload: string;
  chunks: number;
  status: DeliveryStatus;
  attempts: number;
  /** The delivery is `dead` once `attempts` reaches this. */
  attemptLimit: number;
  updatedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** When it is next due (pending) or its lease expires (running); null when final. */
  dueAt: number | null;
  durationMs: number | null;
  error: string | null;
  /** Times it was re-armed by a redelivery or a replay. */
  replays: number;
  /** Replayed while running: run it again when the current run ends. */
  rerun?: boolean;
  /**
   * Who holds the lease of a `running` record: the id of the process that
   * took it (`DeliveryStore.owner`). Kept after the run, for the record.
   */
  owner?: string | undefined;
  /**
   * Set on a `running` record leased to a process that keeps it in memory
   * until a handler slot frees: its attempt is not counted yet (it is when
   * the run starts). Such a lease that lapses is leased again, never given
   * up: it never ran.
   */
  waiting?: boolean | undefined;
  /**
   * Runs that ended without recording an outcome (their process or Worker
   * died): leases taken again after they lapsed.
   */
  lapses?: number | undefined;
  /**
   * Set while an ordered delivery waits for an earlier one of its key (the
   * id it waits for): it runs when that one is `done`, `skipped` or `dead`.
   */
  after?: string | undefined;
  /** When an ordered record last joined its key's queue (a re-arm). @default receivedAt */
  queuedAt?: number | undefined;
  /**
   * The targets of a `failed` record that succeeded in an earlier attempt of
   * its current life (`"handlers"`, `"forward:<host>"`): its retries run only
   * the others. Cleared when it is final or re-armed.
   */
  settled?: string[] | undefined;
}

/** What the store answered for one delivery. */
export type AcceptResult =
  | {
    status: "queued";
    id: string;
    /**
     * Set when the delivery was stored already leased to this process (the
     * durable fast path): the stored record and its versionstamp.
     */
    leased?: Deno.KvEntry<DeliveryRecord> | undefined;
  }
  | { status: "duplicate"; id: string };

/** Stores a delivery durably; rejects when it could not be stored. */
export type AcceptDelivery = (
  delivery: IncomingDelivery,
) => Promise<AcceptResult>;

/** The public view of a record (admin API). */
export interface DeliverySummary {
  id: string;
  event: string;
  action: string | null;
  status: DeliveryStatus;
  attempts: number;
  receivedAt: string;
  finishedAt: string | null;
  error: string | null;
  repository: string | null;
  sender: string | null;
  durationMs: number | null;
  size: number;
  hookId: string | null;
  /** The `SERIALIZE_BY` key, when the delivery is ordered. */
  orderKey?: string;
  /** The delivery it waits for, while an earlier one of its key is not final. */
  after?: string;
}

/**
 * The stored record as the admin API shows it: times as ISO strings, absent
 * fields as `null`.
 *
 * @example
 * ```ts
 * import { type DeliveryRecord, summarize } from "./types.ts";
 * const record = {
 *   id: "d1", event: "push", action: undefined, hookId: undefined,
 *   target: undefined, headers: {}, repository: undefined, sender: undefined,
 *   kind: "json", digest: "", size: 2, upload: "u", chunks: 1,
 *   status: "done", attempts: 1, attemptLimit: 5, receivedAt: 0,
 *   updatedAt: 0, startedAt: 0, finishedAt: 0, dueAt: null, durationMs: 3,
 *   error: null, replays: 0,
 * } satisfies DeliveryRecord;
 * summarize(record).receivedAt; // "1970-01-01T00:00:00.000Z"
 * ```
 */
export function summarize(record: DeliveryRecord): DeliverySummary {
  return {
    id: record.id,
    event: record.event,
    action: record.action ?? null,
    status: record.status,
    attempts: record.attempts,
    receivedAt: new Date(record.receivedAt).toISOString(),
    finishedAt: record.finishedAt === null
      ? null
      : new Date(record.finishedAt).toISOString(),
    error: record.error,
    repository: record.repository ?? null,
    sender: record.sender ?? null,
    durationMs: record.durationMs,
    size: record.size,
    hookId: record.hookId ?? null,
    ...(record.orderKey !== undefined ? { orderKey: record.orderKey } : {}),
    ...(record.after !== undefined ? { after: record.after } : {}),
  };
}
