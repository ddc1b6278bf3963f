// diff_ids of layers built before, by their metadata fingerprint (see layerFingerprint): on an agent
// that keeps its work folder, a rebuild neither reads nor hashes the layers whose files are
// unchanged. BuildKit keeps the same kind of cache of content checksums keyed by file metadata.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

const MAX_ENTRIES = 2000;

export class DiffIdCache {
  private changed = false;

  private constructor(
    private readonly path: string | undefined,
    private readonly entries: Map<string, string>,
  ) {}

  /** The cache in `path` (a JSON file), or one that remembers nothing when there is no path or file. */
  static async open(path: string | undefined): Promise<DiffIdCache> {
    let entries: [string, string][] = [];
    if (path) {
      try {
        const parsed = JSON.parse(await readFile(path, 'utf8')) as { layers?: unknown };
        if (parsed.layers && typeof parsed.layers === 'object') {
          entries = Object.entries(parsed.layers as Record<string, unknown>).filter((entry): entry is [string, string] => typeof entry[1] === 'string' && /^sha256:[a-f0-9]{64}$/.test(entry[1]));
        }
      } catch {
        // No cache yet, or one this version cannot read: start empty.
      }
    }
    return new DiffIdCache(path, new Map(entries));
  }

  get(fingerprint: string | undefined): string | undefined {
    return fingerprint ? this.entries.get(fingerprint) : undefined;
  }

  set(fingerprint: string | undefined, diffId: string): void {
    if (!fingerprint || this.entries.get(fingerprint) === diffId) return;
    this.entries.delete(fingerprint);
    this.entries.set(fingerprint, diffId);
    this.changed = true;
  }

  /** Writes the newest entries back (owner-only, replaced whole so a cancelled write leaves the old file). */
  async save(): Promise<void> {
    if (!this.path || !this.changed) return;
    const newest = [...this.entries].slice(-MAX_ENTRIES);
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const partial = `${this.path}.${process.pid}.partial`;
    await writeFile(partial, JSON.stringify({ layers: Object.fromEntries(newest) }), { mode: 0o600 });
    await rename(partial, this.path);
  }
}
