// What a push is made of: blobs that know how to reach a repository, and manifests rendered once
// their blobs are there. Image inputs, charts and builds all produce these; the push consumes them.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';

/** Bytes to upload, readable again for every attempt. `open` takes a half-open byte range. */
export interface BlobContent {
  digest: string;
  size: number;
  open(start: number, end: number): Readable;
}

/** A blob with its media type, as it will be referenced from a manifest. */
export interface ResolvedBlob extends BlobContent {
  mediaType: string;
}

/** A blob as a manifest references it. */
export interface PushedBlob {
  digest: string;
  size: number;
  mediaType: string;
}

/** What a blob source may ask of the repository it is pushed to. */
export interface BlobTarget {
  /** HEAD: is the blob already in the repository? */
  has(digest: string): Promise<boolean>;
  upload(blob: ResolvedBlob): Promise<void>;
  /** Uploads bytes produced on the fly; the digest is computed on the way out. */
  uploadStream(open: () => Readable): Promise<{ digest: string; size: number }>;
  /**
   * The compressed layer the repository already holds for an uncompressed digest (diff_id), as
   * read from the manifests the tags point at now: what lets a re-push skip compressing.
   */
  knownLayer(diffId: string): Promise<PushedBlob | undefined>;
  /** Cross-repository mount from `from` in the same registry; false when the registry declined. */
  mount(digest: string, from: string): Promise<boolean>;
}

/**
 * A blob to push. Most know their digest up front (`resolved`); a docker save layer learns its
 * digest only while it is compressed, so each source decides how it reaches the registry.
 */
export interface BlobSource {
  push(target: BlobTarget): Promise<PushedBlob>;
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
  /** Called only after every blob is pushed, since a manifest names its blobs' digests. */
  render(): Promise<RenderedManifest>;
}


export function sha256Digest(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A blob whose digest is known: HEAD, and upload only when the registry lacks it. */
export function resolved(blob: ResolvedBlob): BlobSource {
  return {
    async push(target) {
      if (!(await target.has(blob.digest))) await target.upload(blob);
      return { digest: blob.digest, size: blob.size, mediaType: blob.mediaType };
    },
  };
}

// Large reads: a layer streams to the socket (or to gzip) in 1 MiB pieces instead of the default 64 KiB.
const READ_CHUNK = 1024 * 1024;

/** A blob whose bytes sit in a file at `offset` (a whole file, or a member of a tar). */
export function fileBlob(path: string, offset: number, size: number, digest: string, mediaType: string): ResolvedBlob {
  // createReadStream reads inclusive ranges and has no way to say "nothing".
  const open = (start: number, end: number) => (end > start ? createReadStream(path, { start: offset + start, end: offset + end - 1, highWaterMark: READ_CHUNK }) : Readable.from([]));
  return { digest, size, mediaType, open };
}

export function memoryBlob(bytes: Buffer, mediaType: string): ResolvedBlob {
  return { digest: sha256Digest(bytes), size: bytes.length, mediaType, open: (start, end) => Readable.from([bytes.subarray(start, end)]) };
}

export function renderJson(value: object, mediaType: string): RenderedManifest {
  const bytes = Buffer.from(JSON.stringify(value));
  return { mediaType, bytes, digest: sha256Digest(bytes) };
}
