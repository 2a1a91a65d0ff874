/**
 * The shape of an accepted delivery as it passes from the HTTP layer to the
 * store: types and the header allowlist only, no behaviour.
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
    leased?: { value: unknown; versionstamp: string } | undefined;
  }
  | { status: "duplicate"; id: string };

/** Stores a delivery durably; rejects when it could not be stored. */
export type AcceptDelivery = (
  delivery: IncomingDelivery,
) => Promise<AcceptResult>;
