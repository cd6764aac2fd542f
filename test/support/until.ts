/** A bounded poll, for conditions that have no event to wait on (another process's state, a URL). */

/** Calls `check` every `everyMs` until it returns a value other than undefined; fails after `ms`. */
export async function until<T>(
  ms: number,
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
