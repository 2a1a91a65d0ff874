/**
 * Registering the meta refresh with `Deno.cron` where the runtime has it
 * (Deno Deploy; `--unstable-cron` locally), for isolates that run no timer
 * loop of their own. Each run is the refresher's lazy `maybeRefresh()`,
 * awaited to the end.
 *
 * It does not fetch or decide freshness (the refresher does), and starts
 * nothing when `Deno.cron` is missing: the caller then refreshes on requests.
 *
 * @module
 */

import type { Logger } from "../ops/log.ts";
import { errorMessage } from "../_util/errors.ts";
import type { MetaRefresher } from "./meta.ts";

/** The shape of `Deno.cron` used here. */
export type CronFn = (
  name: string,
  schedule: string,
  handler: () => Promise<void>,
) => unknown;

/**
 * The cron schedule for a refresh period: every N minutes (at least one),
 * hourly from an hour on.
 *
 * @example
 * ```ts
 * import { metaCronSchedule } from "./meta_cron.ts";
 * metaCronSchedule(600); // "*\/10 * * * *"
 * metaCronSchedule(3600); // "0 * * * *"
 * ```
 */
export function metaCronSchedule(refreshSeconds: number): string {
  const minutes = Math.max(1, Math.round(refreshSeconds / 60));
  return minutes >= 60 ? "0 * * * *" : `*/${minutes} * * * *`;
}

/**
 * Registers the meta refresh with `Deno.cron` when the runtime has it (Deno
 * Deploy; `--unstable-cron` locally). Returns whether it did.
 *
 * @example
 * ```ts
 * import { scheduleMetaCron } from "./meta_cron.ts";
 * import { NULL_LOGGER } from "../ops/log.ts";
 * const meta = { maybeRefresh() {}, idle: () => Promise.resolve() };
 * scheduleMetaCron(meta, 3600, NULL_LOGGER, () => undefined); // true
 * ```
 */
export function scheduleMetaCron(
  meta: Pick<MetaRefresher, "maybeRefresh" | "idle">,
  refreshSeconds: number,
  log: Logger,
  cron: CronFn | undefined = (Deno as unknown as { cron?: CronFn }).cron,
): boolean {
  if (typeof cron !== "function") return false;
  const schedule = metaCronSchedule(refreshSeconds);
  try {
    cron("hookgate: refresh GitHub meta hooks", schedule, async () => {
      meta.maybeRefresh();
      await meta.idle();
    });
    return true;
  } catch (err) {
    log.warn(
      "Deno.cron unavailable; refreshing the meta list on requests only",
      {
        error: errorMessage(err),
      },
    );
    return false;
  }
}
