// Writes an image as an OCI image layout folder (image-spec image-layout.md): `oci-layout`,
// `index.json` naming the image, and every blob under `blobs/sha256/`, each checked against its
// digest as it is written. Another tool (a scanner, skopeo, the push task) can then read it.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { forEachLimited } from '../concurrency.js';
import { ContentError, InputError } from '../errors.js';
import type { RenderedManifest } from '../oci/content.js';
import { tap } from '../streams.js';

export interface LayoutBlob {
  digest: string;
  size: number;
  open(): Promise<Readable>;
}

export interface WriteLayoutOptions {
  /** The folder; it must not exist, be empty, or already be an OCI layout (its index.json is replaced). */
  path: string;
  /** Input name for messages. */
  input: string;
  /** What index.json points at. */
  root: RenderedManifest;
  /** Manifests below the root (an index's children). */
  manifests: RenderedManifest[];
  blobs: LayoutBlob[];
  /** `org.opencontainers.image.ref.name` of the root entry (a tag). */
  refName?: string;
  concurrency?: number;
}

/** Refuses a folder that exists and is neither empty nor an OCI layout; `input` names it in the message. */
export async function checkLayoutTarget(path: string, input: string): Promise<void> {
  const info = await stat(path).catch(() => undefined);
  if (!info) return;
  if (!info.isDirectory()) throw new InputError(input, `${path} exists and is not a folder; give a new folder for the OCI layout.`);
  const names = await readdir(path);
  if (names.length > 0 && !names.includes('oci-layout')) throw new InputError(input, `${path} holds other files; give an empty or new folder for the OCI layout.`);
}

export async function writeImageLayout(options: WriteLayoutOptions): Promise<void> {
  await checkLayoutTarget(options.path, options.input);
  const blobs = join(options.path, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const written = new Set<string>();
  const writeBytes = async (item: RenderedManifest) => {
    if (written.has(item.digest)) return;
    written.add(item.digest);
    await writeFile(join(blobs, item.digest.slice('sha256:'.length)), item.bytes);
  };
  for (const manifest of [...options.manifests, options.root]) await writeBytes(manifest);
  const unique = options.blobs.filter((blob) => !written.has(blob.digest) && (written.add(blob.digest), true));
  await forEachLimited(unique, options.concurrency ?? 4, async (blob) => {
    const target = join(blobs, blob.digest.slice('sha256:'.length));
    const partial = `${target}.partial`;
    const hash = createHash('sha256');
    let size = 0;
    await pipeline(
      await blob.open(),
      tap((chunk) => {
        hash.update(chunk);
        size += chunk.length;
      }),
      createWriteStream(partial),
    );
    const digest = `sha256:${hash.digest('hex')}`;
    if (digest !== blob.digest || size !== blob.size) {
      await rm(partial, { force: true });
      throw new ContentError(`Blob ${blob.digest} arrived as ${digest} (${size} bytes, expected ${blob.size}); it was not written to ${options.path}.`);
    }
    await rename(partial, target);
  });
  const annotations = options.refName ? { 'org.opencontainers.image.ref.name': options.refName } : undefined;
  const entry = { mediaType: options.root.mediaType, digest: options.root.digest, size: options.root.bytes.length, ...(annotations ? { annotations } : {}) };
  await writeFile(join(options.path, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(options.path, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [entry] }));
}
