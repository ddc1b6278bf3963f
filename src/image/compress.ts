import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { tap } from '../streams.js';

export interface CompressedLayer {
  /** Digest of the gzip bytes written to the target. */
  digest: string;
  size: number;
  /** Digest of the uncompressed tar: the image config's diff_id for this layer. */
  diffId: string;
}

/**
 * Gzips a layer into `target` (mode 0600) while hashing both the input and the output, so the
 * layer is read once. zlib runs on the libuv thread pool, so several layers compress in parallel.
 * Node writes a gzip header with no timestamp: the same layer always gives the same digest, and
 * a re-push finds it already in the registry.
 */
export async function compressLayer(source: Readable, target: string, level: number): Promise<CompressedLayer> {
  const input = createHash('sha256');
  const output = createHash('sha256');
  let size = 0;
  await pipeline(
    source,
    tap((chunk) => input.update(chunk)),
    createGzip({ level, chunkSize: 256 * 1024 }),
    tap((chunk) => {
      output.update(chunk);
      size += chunk.length;
    }),
    createWriteStream(target, { mode: 0o600 }),
  );
  return { digest: `sha256:${output.digest('hex')}`, size, diffId: `sha256:${input.digest('hex')}` };
}
