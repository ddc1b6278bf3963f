/**
 * Runs `worker` over `items` with at most `limit` in flight. The first failure stops new work
 * from starting and is thrown once the started work has settled, so no upload is left running
 * behind a failed task.
 */
export async function forEachLimited<T>(items: readonly T[], limit: number, worker: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async (): Promise<void> => {
    while (!failure && next < items.length) {
      const item = items[next++];
      try {
        await worker(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  if (failure) throw failure.error;
}

/**
 * Values that expire (tokens), minted once per key however many callers ask at the same moment:
 * every caller that comes while a mint is under way shares it. A value no longer fresh is replaced
 * by one new mint; a failed mint is forgotten, so the next caller tries again.
 */
export class SingleFlightCache<V> {
  private readonly entries = new Map<string, { promise: Promise<V>; value?: V }>();

  constructor(private readonly isFresh: (value: V) => boolean) {}

  get(key: string, mint: () => Promise<V>): Promise<V> {
    const entry = this.entries.get(key);
    if (entry && (entry.value === undefined || this.isFresh(entry.value))) return entry.promise;
    const fresh: { promise: Promise<V>; value?: V } = { promise: mint() };
    this.entries.set(key, fresh);
    fresh.promise.then(
      (value) => {
        fresh.value = value;
      },
      () => {
        if (this.entries.get(key) === fresh) this.entries.delete(key);
      },
    );
    return fresh.promise;
  }

  /** Forgets every entry whose key passes `test` (tokens the server refused). */
  forget(test: (key: string) => boolean): void {
    for (const key of [...this.entries.keys()]) if (test(key)) this.entries.delete(key);
  }
}
