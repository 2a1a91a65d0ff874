/**
 * The durable fast path of accepting a delivery: when this process has a
 * free handler slot (or room in its local queue), the delivery is stored
 * already leased to it and runs from memory — at once, with no lease commit
 * and no read back from KV, or, stored `waiting` (its attempt not counted),
 * when a slot frees. Either way the answer waits for the commit, and a crash
 * leaves a lease that expires and is re-run by any process.
 *
 * It decides nothing about storing (the store does) or running (the worker
 * does); it only joins the two for one delivery, and tells the store's
 * write health (`store/health.ts`, behind `/readyz`) whether the write
 * worked, and the hook memory (`github/hooks_seen.ts`) which webhook a new
 * delivery came from.
 *
 * @module
 */

import type { AcceptDelivery } from "../store/types.ts";
import type { DeliveryStore } from "../store/store.ts";
import type { StoreHealth } from "../store/health.ts";
import type { Worker } from "./worker.ts";
import type { SerializeBy } from "../config/config.ts";
import { orderKeyOf } from "./ordering.ts";
import type { HookMemory } from "../github/hooks_seen.ts";

/** Options of {@link createAccept}. */
export interface AcceptWiring {
  store: Pick<DeliveryStore, "accept">;
  worker: Pick<Worker, "reserve" | "runLeased" | "release" | "wake">;
  /** Told of every write's success or failure. @default none */
  health?: Pick<StoreHealth, "succeeded" | "failed">;
  /** `SERIALIZE_BY` (`ordering.ts`). @default "none" */
  serializeBy?: SerializeBy;
  /**
   * Told of each new delivery's webhook, for reconciliation, once it is
   * stored (it never awaits). @default none
   */
  hooks?: Pick<HookMemory, "seen">;
}

/**
 * Makes the request handler's `accept`: reserve a run, store the delivery
 * (leased when a run was reserved), then run it from memory, or free the
 * reservation and wake the worker for a queued one. An ordered delivery
 * (`SERIALIZE_BY`) is given its order key and always stored queued. Rejects as the store
 * does, with the reservation freed. Each outcome is reported to `health`.
 *
 * @example
 * ```ts ignore
 * const accept = createAccept({ store, worker });
 * createHandler({ ...deps, accept });
 * ```
 */
export function createAccept(
  { store, worker, health, serializeBy = "none", hooks }: AcceptWiring,
): AcceptDelivery {
  return async (received) => {
    const orderKey = orderKeyOf(serializeBy, received);
    const delivery = orderKey === undefined
      ? received
      : { ...received, orderKey };
    // An ordered delivery is stored queued: the worker leases it in order.
    const reservation = orderKey === undefined
      ? worker.reserve(received.body.byteLength)
      : null;
    let result;
    try {
      result = await store.accept(
        delivery,
        reservation === null ? { leaseUntil: undefined } : reservation,
      );
    } catch (err) {
      if (reservation !== null) worker.release(reservation);
      health?.failed(err);
      throw err;
    }
    health?.succeeded();
    if (result.status === "queued" && result.leased) {
      worker.runLeased(result.leased, {
        body: delivery.body,
        payload: delivery.payload,
      });
    } else {
      if (reservation !== null) worker.release(reservation);
      if (result.status === "queued") worker.wake();
    }
    if (result.status === "queued") hooks?.seen(received);
    return result;
  };
}
