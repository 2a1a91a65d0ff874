/**
 * CPU profiles of the servers (`--cpu-prof`): each main thread's hottest
 * functions by self time, and by self time charged to the nearest function
 * of this project on the stack, printed to stdout. It reads the profiles
 * V8 wrote; it does not run anything.
 *
 * @module
 */

import { ROOT } from "./common.ts";

/** A node of a V8 `.cpuprofile`. */
export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

/** Sample counts of a profile's main thread. */
export interface ProfileCounts {
  /** Hits by function, self time. */
  self: Map<string, number>;
  /** Hits by the nearest project function on the stack. */
  charged: Map<string, number>;
  busy: number;
  idle: number;
}

function printTop(
  title: string,
  counts: Map<string, number>,
  busy: number,
): void {
  console.log(title);
  for (
    const [name, hits] of [...counts].sort((x, y) => y[1] - x[1]).slice(0, 20)
  ) {
    console.log(`  ${(100 * hits / busy).toFixed(1).padStart(5)} %  ${name}`);
  }
}

/**
 * Counts a profile's samples: self time by function, and self time charged
 * to the nearest function under `root` on the stack (so that `verify` or
 * `op_kv_atomic_write` count for their caller); `(idle)` apart.
 *
 * @example
 * ```ts
 * import { countProfile } from "./profile.ts";
 * const frame = { functionName: "f", url: "file:///r/a.ts", lineNumber: 0 };
 * countProfile([{ id: 1, callFrame: frame, hitCount: 2 }], "/r/").busy; // 2
 * ```
 */
export function countProfile(
  nodes: readonly ProfileNode[],
  root: string = ROOT,
): ProfileCounts {
  const parent = new Map<number, ProfileNode>();
  for (const node of nodes) {
    for (const child of node.children ?? []) parent.set(child, node);
  }
  const name = (node: ProfileNode) => {
    const { functionName, url, lineNumber } = node.callFrame;
    return `${functionName || "(anonymous)"} ${
      url.replace(`file://${root}`, "")
    }:${lineNumber + 1}`;
  };
  const self = new Map<string, number>();
  const charged = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  for (const node of nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0) continue;
    if (node.callFrame.functionName === "(idle)") {
      idle += hits;
      continue;
    }
    busy += hits;
    self.set(name(node), (self.get(name(node)) ?? 0) + hits);
    let at: ProfileNode | undefined = node;
    while (at && !at.callFrame.url.startsWith(`file://${root}`)) {
      at = parent.get(at.id);
    }
    const key = at ? name(at) : `(runtime) ${name(node)}`;
    charged.set(key, (charged.get(key) ?? 0) + hits);
  }
  return { self, charged, busy, idle };
}

/**
 * Prints the main thread's hottest functions of every profile in `dir`:
 * self time, and self time charged to the nearest project function, as
 * shares of the non-idle samples.
 *
 * @example
 * ```ts
 * import { printProfile } from "./profile.ts";
 * // printProfile("bench/out/prof/c-good-1", "c-good-1");
 * ```
 */
export function printProfile(dir: string, label: string): void {
  for (const entry of Deno.readDirSync(dir)) {
    if (!entry.name.endsWith(".cpuprofile")) continue;
    const profile = JSON.parse(
      Deno.readTextFileSync(`${dir}/${entry.name}`),
    ) as { nodes: ProfileNode[] };
    const { self, charged, busy, idle } = countProfile(profile.nodes);
    console.log(
      `\nCPU profile of ${label} (${dir}/${entry.name}): main thread busy in ${
        (100 * busy / (busy + idle)).toFixed(0)
      } % of samples; shares of the busy samples.`,
    );
    printTop("self time:", self, busy);
    printTop("charged to the nearest project function:", charged, busy);
  }
}
