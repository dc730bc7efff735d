/** Poll `check` every `every` ms until it returns something truthy, and return that; after `ms`, fail naming `what`. */
export async function waitFor<T>(what: string, check: () => T | null | undefined | false | Promise<T | null | undefined | false>, ms = 10000, every = 25): Promise<T> {
  for (const until = Date.now() + ms; Date.now() < until; await Bun.sleep(every)) {
    const v = await check();
    if (v) return v;
  }
  throw new Error(`timed out waiting for ${what}`);
}
