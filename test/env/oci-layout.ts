// Tiny, deterministic OCI image layouts (image-spec v1.1 `image-layout.md`) for tests that need a
// real image to push: one gzip layer holding one file, a config, a manifest and index.json.
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { tarOf } from '../fixtures/images.js';

export const OCI_MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export interface TinyImage {
  /** The layout folder (`oci:<layoutDir>:<tag>` for skopeo). */
  layoutDir: string;
  tag: string;
  manifest: Descriptor;
  config: Descriptor;
  layer: Descriptor;
  /** The exact manifest bytes, to compare with what a registry serves back. */
  manifestBytes: Buffer;
}

export function sha256Digest(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

async function writeBlob(layoutDir: string, data: Buffer, mediaType: string): Promise<Descriptor> {
  const digest = sha256Digest(data);
  await writeFile(path.join(layoutDir, 'blobs', 'sha256', digest.slice('sha256:'.length)), data);
  return { mediaType, digest, size: data.length };
}

/** Writes a one-layer linux/amd64 image whose file holds `content` (vary it to get distinct digests). */
export async function writeTinyImageLayout(layoutDir: string, options: { tag?: string; content?: string } = {}): Promise<TinyImage> {
  const tag = options.tag ?? 'latest';
  await mkdir(path.join(layoutDir, 'blobs', 'sha256'), { recursive: true });
  const tar = tarOf([{ name: 'hello.txt', content: Buffer.from(options.content ?? 'hello from the test registry\n') }]);
  // mtime 0 in the gzip header keeps the layer digest stable across runs.
  const layer = await writeBlob(layoutDir, gzipSync(tar, { level: 9 }), 'application/vnd.oci.image.layer.v1.tar+gzip');
  const configBytes = Buffer.from(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Cmd: ['/hello.txt'] },
    rootfs: { type: 'layers', diff_ids: [sha256Digest(tar)] },
  }));
  const config = await writeBlob(layoutDir, configBytes, 'application/vnd.oci.image.config.v1+json');
  const manifestBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST_MEDIA_TYPE, config, layers: [layer] }));
  const manifest = await writeBlob(layoutDir, manifestBytes, OCI_MANIFEST_MEDIA_TYPE);
  await writeFile(path.join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(path.join(layoutDir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  }));
  return { layoutDir, tag, manifest, config, layer, manifestBytes };
}
