/**
 * The order in which the pool's workers take the test files (vitest.config.ts). Vitest's own
 * (BaseSequencer) stays underneath: tiers by groupOrder, each project's files together (with
 * `isolate: false` a worker process is kept only for a next file of its own project), the longest
 * first by the last run's durations, or the largest first without them (a fresh clone, CI).
 *
 * On top of that, the files that mostly wait are spread evenly through their project's files
 * instead of wherever their size puts them, so that the files beside each one compute. Left where
 * they fell, three met at the e2e/integration boundary in one CI run (the 60 s soak, graphql-sse,
 * rate-limit) and both cores were ~40 % busy for 45 s.
 */
import path from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** CPU under ~0.4 of their wall time (process accounting of a whole run): windows, expiries, a soak. */
const MOSTLY_WAITING = new Set([
  'test/e2e/soak.test.ts',
  'test/e2e/auth.test.ts',
  'test/e2e/faults.test.ts',
  'packages/client/test/e2e/transports.test.ts',
  'test/integration/graphql-sse.test.ts',
  'test/integration/rate-limit.test.ts',
  'test/integration/bench-voters.test.ts',
]);

export default class SpreadWaitingSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const waits = (spec: TestSpecification): boolean =>
      MOSTLY_WAITING.has(path.relative(this.ctx.config.root, spec.moduleId).replaceAll(path.sep, '/'));
    const out: TestSpecification[] = [];
    for (let start = 0; start < sorted.length;) {
      let end = start + 1;
      while (end < sorted.length && sorted[end]!.project === sorted[start]!.project) end += 1;
      out.push(...spread(sorted.slice(start, end), waits));
      start = end;
    }
    return out;
  }
}

/** `k` waiting files of `n` at positions 0, n/k, 2n/k, …; the others keep their order between. */
function spread<T>(files: T[], waits: (file: T) => boolean): T[] {
  const waiting = files.filter(waits);
  const others = files.filter((file) => !waits(file));
  const step = files.length / Math.max(1, waiting.length);
  const out: T[] = [];
  for (let placed = 0; out.length < files.length;) {
    const due =
      placed < waiting.length && (out.length >= Math.round(placed * step) || out.length - placed >= others.length);
    out.push(due ? waiting[placed++]! : others[out.length - placed]!);
  }
  return out;
}
