import { createHash } from 'node:crypto';
import { pipeline, type Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { tap } from '../streams.js';

export interface CompressingLayer {
  /** The gzip bytes, produced as they are read. */
  stream: Readable;
  /** Digest of the uncompressed tar (the config's diff_id); valid once `stream` has ended. */
  diffId(): string;
}

/**
 * Gzips a layer on the fly while hashing its uncompressed bytes, so the layer is read once and
 * compression overlaps the upload. zlib runs on the libuv thread pool, so several layers compress
 * in parallel. Node's gzip header carries no timestamp: the same layer always gives the same bytes.
 */
export function compressLayer(source: Readable, level: number): CompressingLayer {
  const input = createHash('sha256');
  let diffId: string | undefined;
  // memLevel 9 (the largest match hash table) is about 15% faster than the default 8 at the same size.
  const gzip = createGzip({ level, memLevel: 9, chunkSize: 256 * 1024 });
  const stream = pipeline(
    source,
    tap((chunk) => input.update(chunk)),
    gzip,
    (error) => {
      if (error) gzip.destroy(error);
    },
  );
  return {
    stream,
    diffId: () => (diffId ??= `sha256:${input.digest('hex')}`),
  };
}
