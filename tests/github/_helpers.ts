/**
 * Helpers shared by the tests of `lib/github/`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { GitHubApiError } from "../../lib/github/rest.ts";

/** The {@link GitHubApiError} `promise` rejects with; fails otherwise. */
export async function rejection(
  promise: Promise<unknown>,
): Promise<GitHubApiError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof GitHubApiError, String(err));
    return err;
  }
  throw new Error("expected a rejection");
}
