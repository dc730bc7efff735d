/**
 * When a resident module copies its WAL into the database (CheckpointPolicy): a checkpoint syncs
 * two files while the line loop waits, so it takes a quiet moment, or at most a minute of flood.
 */
import { expect, test } from "bun:test";
import { CheckpointPolicy } from "../../src/modules/loop";

test("a checkpoint waits for a second without input, or a minute of input that never pauses", () => {
  const policy = new CheckpointPolicy(0, 1000, 60_000);
  /* no input yet: quiet */
  expect(policy.take(2000)).toBe(true);
  /* a line every half second: never quiet for a second */
  for (let t = 2500; t < 62_000; t += 500) {
    policy.input(t - 1);
    expect(policy.take(t)).toBe(false);
  }
  /* a minute after the last one, the flood has its checkpoint anyway, and the next waits again */
  policy.input(61_999);
  expect(policy.take(62_000)).toBe(true);
  policy.input(63_999);
  expect(policy.take(64_000)).toBe(false);
  /* the input stops: a second later, the checkpoint is taken */
  expect(policy.take(64_999)).toBe(true);
});
