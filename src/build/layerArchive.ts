// A build layer as a reproducible tar: entries in byte order of their paths (so parents come before
// children), numeric owners, modes as built, every mtime the same (SOURCE_DATE_EPOCH, else 0),
// symbolic links as links, files sharing an inode as one file and hard links. Then gzip, with the
// uncompressed digest (diff_id) and the compressed digest taken in the same streaming pass.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ContentError } from '../errors.js';
import { compressLayer } from '../image/compress.js';
import { tap } from '../streams.js';
import { TAR_END, tarHeader, tarPadding, type TarHeader } from '../archive/tar.js';
import type { Content, FsNode, Layer } from './filesystem.js';

/** The entries of a layer in archive order, hard links pointing at the first of their group. */
function archiveEntries(layer: Layer): { path: string; node: FsNode; linkTo?: string }[] {
  const paths = [...layer.entries.keys()].map((path) => ({ path, key: Buffer.from(path) })).sort((a, b) => Buffer.compare(a.key, b.key));
  const leaders = new Map<string, string>();
  return paths.map(({ path }) => {
    const node = layer.entries.get(path)!;
    if (node.type === 'file' && node.hardLinkGroup) {
      const leader = leaders.get(node.hardLinkGroup);
      if (leader) return { path, node, linkTo: leader };
      leaders.set(node.hardLinkGroup, path);
    }
    return { path, node };
  });
}

/** Files up to this size are read whole, several ahead of the writer; larger ones stream. */
const SMALL_FILE = 1024 * 1024;
/** Bytes of small files read ahead at most. */
const READ_AHEAD_BYTES = 16 * 1024 * 1024;
/** Output is handed on in pieces of about this size: many tiny writes cost zlib and the GC more than the bytes. */
const BATCH_BYTES = 1024 * 1024;

async function readWhole(content: Content): Promise<Buffer> {
  if (content.read) return content.read();
  const chunks: Buffer[] = [];
  for await (const chunk of content.open() as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function* tarChunks(layer: Layer, mtimeSeconds: number): AsyncGenerator<Buffer> {
  const entries = archiveEntries(layer);
  // Small files are read ahead (their reads overlap each other and the compression) within a byte budget.
  const small = (entry: (typeof entries)[number]) => !entry.linkTo && entry.node.type === 'file' && (entry.node.content?.size ?? 0) <= SMALL_FILE && (entry.node.content?.size ?? 0) > 0;
  const reads = new Map<number, Promise<Buffer>>();
  let nextRead = 0;
  let aheadBytes = 0;
  const readAhead = (from: number) => {
    nextRead = Math.max(nextRead, from);
    while (nextRead < entries.length && aheadBytes < READ_AHEAD_BYTES) {
      const entry = entries[nextRead];
      if (small(entry)) {
        const pending = readWhole(entry.node.content!);
        pending.catch(() => undefined);
        reads.set(nextRead, pending);
        aheadBytes += entry.node.content!.size;
      }
      nextRead++;
    }
  };
  let batch: Buffer[] = [];
  let batched = 0;
  const add = (piece: Buffer) => {
    batch.push(piece);
    batched += piece.length;
  };
  const flush = () => {
    const out = batch.length === 1 ? batch[0] : Buffer.concat(batch, batched);
    batch = [];
    batched = 0;
    return out;
  };
  for (const [index, { path, node, linkTo }] of entries.entries()) {
    readAhead(index);
    const name = path.slice(1);
    const header: TarHeader = { name, type: 'file', mode: node.mode, uid: node.uid, gid: node.gid, size: 0, mtime: mtimeSeconds };
    if (linkTo) add(tarHeader({ ...header, type: 'hardlink', linkName: linkTo.slice(1) }));
    else if (node.type === 'dir') add(tarHeader({ ...header, name: `${name}/`, type: 'directory' }));
    else if (node.type === 'symlink') add(tarHeader({ ...header, type: 'symlink', linkName: node.linkTarget ?? '' }));
    else {
      const content = node.content;
      const size = content?.size ?? 0;
      add(tarHeader({ ...header, size }));
      let read = 0;
      const pending = reads.get(index);
      if (pending) {
        reads.delete(index);
        aheadBytes -= size;
        const data = await pending;
        read = data.length;
        if (read === size) add(data);
      } else if (content && size > 0) {
        if (batched > 0) yield flush();
        for await (const chunk of content.open() as AsyncIterable<Buffer>) {
          read += chunk.length;
          if (read > size) break;
          yield chunk;
        }
      }
      if (read !== size) throw new ContentError(`${path} changed while the layer was written (expected ${size} bytes, read ${read}); run the build again once nothing writes to the context.`);
      add(tarPadding(size));
    }
    if (batched >= BATCH_BYTES) yield flush();
  }
  add(TAR_END);
  yield flush();
}

/**
 * A key for the layer's tar computed from metadata alone — every entry as archived, and for files
 * the identity of their bytes — or undefined when some file's identity is unknown. Two layers with
 * the same key have the same tar, so a diff_id found once need not be computed again.
 */
export function layerFingerprint(layer: Layer, mtimeSeconds: number): string | undefined {
  const hash = createHash('sha256').update(`${mtimeSeconds}\n`);
  for (const { path, node, linkTo } of archiveEntries(layer)) {
    const identity = node.type === 'file' && !linkTo ? node.content?.identity ?? (node.content?.size ? undefined : 'empty') : '';
    if (identity === undefined) return undefined;
    hash.update(JSON.stringify([path, node.type, node.mode, node.uid, node.gid, node.linkTarget ?? '', linkTo ?? '', identity]));
  }
  return hash.digest('hex');
}

/** The layer's uncompressed tar as a stream. */
export function layerTar(layer: Layer, mtimeSeconds: number): Readable {
  return Readable.from(tarChunks(layer, mtimeSeconds), { objectMode: false });
}

/** Only the diff_id: cheap (hashing, no compression), used to find a layer the registry already has. */
export async function layerDiffId(layer: Layer, mtimeSeconds: number): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of layerTar(layer, mtimeSeconds) as AsyncIterable<Buffer>) hash.update(chunk);
  return `sha256:${hash.digest('hex')}`;
}

export interface CompressedLayer {
  diffId: string;
  digest: string;
  size: number;
  /** The gzip bytes (private temp folder). */
  path: string;
}

/**
 * Writes the layer gzip-compressed to `path`, hashing the tar and the gzip bytes on the way (the
 * push task's layer compressor: zlib on the libuv thread pool, so layers compressed at the same
 * time use several cores; no time stamp in the gzip header, so the same layer gives the same bytes).
 */
export async function compressLayerTo(layer: Layer, mtimeSeconds: number, path: string, level: number): Promise<CompressedLayer> {
  const compressing = compressLayer(layerTar(layer, mtimeSeconds), level);
  const compressed = createHash('sha256');
  let size = 0;
  await pipeline(
    compressing.stream,
    tap((chunk) => {
      compressed.update(chunk);
      size += chunk.length;
    }),
    createWriteStream(path, { mode: 0o600 }),
  );
  return { diffId: compressing.diffId(), digest: `sha256:${compressed.digest('hex')}`, size, path };
}
