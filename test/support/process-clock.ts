/**
 * Preloaded (`node --import`) into a server process a test starts with `startServerProcess(env,
 * { movableClock: true })`, never into the server itself: the process's wall clock (`Date.now()`,
 * `new Date()`) becomes real time plus an offset the test moves forward, so "once these accounts are
 * 10 s old" is one step of the clock instead of 10 s of waiting. The in-process equivalent for apps
 * under test is test/support/clock.ts (createApp's `now`); a separate process needs its own.
 *
 * A step is read at SIGUSR2 from the file CLOCK_OFFSET_FILE names (total offset in ms, which only
 * grows), then acknowledged with one line on stdout, which the test waits for. Time moves forward
 * only, so from the server's side a step is what waiting would have been, except that timers set
 * meanwhile do not fire early (they run on monotonic time, as in production).
 */
import { readFileSync } from 'node:fs';

const file = process.env['CLOCK_OFFSET_FILE'];
if (!file) throw new Error('process-clock: CLOCK_OFFSET_FILE is not set');

const RealDate = Date;
let offset = 0;

// A constructor function rather than a subclass: instances keep Date.prototype itself (instanceof
// and every method as before), and `Date()` called without new still answers a string.
function MovableDate(this: unknown, ...args: unknown[]): Date | string {
  if (new.target === undefined) return new RealDate(RealDate.now() + offset).toString();
  return Reflect.construct(RealDate, args.length === 0 ? [RealDate.now() + offset] : args, new.target) as Date;
}
MovableDate.prototype = RealDate.prototype;
Object.setPrototypeOf(MovableDate, RealDate); // Date.UTC, Date.parse
MovableDate.now = (): number => RealDate.now() + offset;
globalThis.Date = MovableDate as unknown as DateConstructor;

process.on('SIGUSR2', () => {
  const next = Number(readFileSync(file, 'utf8'));
  if (!(Number.isFinite(next) && next >= offset)) {
    process.stdout.write(`[process-clock] refused offset ${next} (now ${offset})\n`);
    return;
  }
  offset = next;
  process.stdout.write(`[process-clock] offset ${offset}\n`);
});
