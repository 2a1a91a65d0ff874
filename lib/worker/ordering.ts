/**
 * `SERIALIZE_BY`: which deliveries run one at a time, in the order they were
 * stored. A delivery's order key is fixed when it is accepted: `owner/name`
 * (`repository`), or `owner/name` and its branch (`branch`, the
 * repository alone when the payload names no branch). A delivery without a
 * repository is not ordered.
 *
 * The order itself is kept in KV, across every process sharing it: each
 * ordered delivery has an entry in its key's queue, and only the key's
 * head may be leased (`store/order.ts`, `store/store.ts`). Ordered
 * deliveries never take the durable fast path (`accept.ts`): they are
 * stored queued, and the worker leases them through that gate.
 *
 * @module
 */

import type { SerializeBy } from "../config/config.ts";
import type { IncomingDelivery } from "../store/types.ts";
import { branchOf } from "../github/refs.ts";
import { decodePayload } from "../http/payload.ts";

/**
 * The order key of a delivery, or undefined when it is not ordered.
 * `payload` is parsed from the body when the receiver did not parse it
 * (large bodies), and only for `branch`.
 *
 * @example
 * ```ts
 * import { orderKeyOf } from "./ordering.ts";
 * const delivery = {
 *   event: "push", repository: "octo/app", body: new Uint8Array(0), kind: "json",
 *   payload: { ref: "refs/heads/main" },
 * } as const;
 * orderKeyOf("repository", delivery); // "octo/app"
 * orderKeyOf("branch", delivery); // "octo/app#main"
 * orderKeyOf("none", delivery); // undefined
 * ```
 */
export function orderKeyOf(
  mode: SerializeBy,
  delivery: Pick<
    IncomingDelivery,
    "event" | "repository" | "body" | "kind" | "payload"
  >,
): string | undefined {
  if (mode === "none" || delivery.repository === undefined) return undefined;
  if (mode === "repository") return delivery.repository;
  let payload: unknown = delivery.payload;
  if (payload === undefined) {
    const decoded = decodePayload(delivery.body, delivery.kind);
    payload = decoded.ok ? decoded.payload : undefined;
  }
  const branch = branchOf(delivery.event, payload);
  return branch === undefined
    ? delivery.repository
    : `${delivery.repository}#${branch}`;
}
