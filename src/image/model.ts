import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { BlobContent } from '../oci/registry.js';

/** A blob with its media type, as it will be referenced from a manifest. */
export interface ResolvedBlob extends BlobContent {
  mediaType: string;
}

/**
 * A blob that may need work before its digest is known (a docker save layer is compressed
 * first). `resolve` does that work once; the push calls it inside its concurrency limit, so
 * compression of one layer overlaps the upload of another.
 */
export interface BlobSource {
  resolve(): Promise<ResolvedBlob>;
}

export interface RenderedManifest {
  mediaType: string;
  bytes: Buffer;
  digest: string;
}

/** A manifest or index to push: its blobs and child manifests go first, then `render()`'s bytes. */
export interface ManifestSource {
  blobs: BlobSource[];
  children: ManifestSource[];
  /** Called only after every blob resolved, since a manifest names its blobs' digests. */
  render(): Promise<RenderedManifest>;
}

export interface ImageSource {
  /** What the tags will point at: an image manifest, or an index of several. */
  root: ManifestSource;
  /** Human-readable kind of input, for the log. */
  format: string;
  /** Removes temporary files. */
  close(): Promise<void>;
}

export function sha256Digest(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function resolved(blob: ResolvedBlob): BlobSource {
  const ready = Promise.resolve(blob);
  return { resolve: () => ready };
}

/** A blob whose bytes sit in a file at `offset` (a whole file, or a member of a tar). */
export function fileBlob(path: string, offset: number, size: number, digest: string, mediaType: string): ResolvedBlob {
  // createReadStream reads inclusive ranges and has no way to say "nothing".
  const open = (start: number, end: number) => (end > start ? createReadStream(path, { start: offset + start, end: offset + end - 1 }) : Readable.from([]));
  return { digest, size, mediaType, open };
}

export function memoryBlob(bytes: Buffer, mediaType: string): ResolvedBlob {
  return { digest: sha256Digest(bytes), size: bytes.length, mediaType, open: (start, end) => Readable.from([bytes.subarray(start, end)]) };
}

export function renderJson(value: object, mediaType: string): RenderedManifest {
  const bytes = Buffer.from(JSON.stringify(value));
  return { mediaType, bytes, digest: sha256Digest(bytes) };
}
