import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ContentError, InputError } from '../errors.js';
import { DIGEST } from '../oci/reference.js';
import { OCI_INDEX, isIndexMediaType, isManifestMediaType, type Descriptor, type ImageIndex, type ImageManifest } from '../oci/mediaTypes.js';
import { fileBlob, resolved, sha256Digest, type BlobSource, type ManifestSource } from '../oci/content.js';
import { readMember, type TarMember } from '../archive/tar.js';

/** Where an OCI image layout's files live: a folder, or the members of a tar (an OCI archive). */
export interface LayoutFiles {
  label: string;
  read(name: string): Promise<Buffer | undefined>;
  /** The file's location for streaming: path, offset and size; undefined when absent. */
  locate(name: string): Promise<{ path: string; offset: number; size: number } | undefined>;
}

export function folderFiles(root: string): LayoutFiles {
  return {
    label: root,
    read: (name) => readFile(join(root, name)).catch(() => undefined),
    locate: async (name) => {
      const info = await stat(join(root, name)).catch(() => undefined);
      return info?.isFile() ? { path: join(root, name), offset: 0, size: info.size } : undefined;
    },
  };
}

export function tarFiles(path: string, label: string, members: Map<string, TarMember>): LayoutFiles {
  return {
    label,
    read: async (name) => {
      const member = members.get(name);
      return member && readMember(path, member);
    },
    locate: (name) => {
      const member = members.get(name);
      return Promise.resolve(member && { path, offset: member.offset, size: member.size });
    },
  };
}

// Manifests and indexes are read into memory; anything this large is not one.
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/**
 * Reads an OCI image layout (image-spec image-layout.md) into what the push needs. Blobs are
 * pushed byte for byte; manifests are checked against their digests on the way in.
 */
export async function loadLayout(files: LayoutFiles, input: string): Promise<ManifestSource> {
  const marker = await files.read('oci-layout');
  const indexBytes = await files.read('index.json');
  if (!marker || !indexBytes) throw new InputError(input, `${files.label} is not an OCI image layout (no oci-layout or index.json).`);
  const index = parseJson<ImageIndex>(indexBytes, `${files.label}/index.json`);
  const descriptors = index.manifests ?? [];
  if (descriptors.length === 0) throw new InputError(input, `${files.label} holds no image (index.json lists no manifests).`);
  const blobs = new Map<string, BlobSource>();
  const load = (descriptor: Descriptor) => loadManifest(files, descriptor, blobs);
  if (descriptors.length === 1) return load(descriptors[0]);
  // Several entries: one multi-platform image written flat into index.json, unless they are
  // differently named images, where pushing them under one tag would be a guess.
  const names = new Set(descriptors.map((d) => d.annotations?.['org.opencontainers.image.ref.name']).filter(Boolean));
  if (names.size > 1) {
    throw new InputError(input, `${files.label} holds ${names.size} differently named images (${[...names].join(', ')}); save just the one to push.`);
  }
  const children = await Promise.all(descriptors.map(load));
  return { blobs: [], children, render: () => Promise.resolve({ mediaType: index.mediaType ?? OCI_INDEX, bytes: indexBytes, digest: sha256Digest(indexBytes) }) };
}

async function loadManifest(files: LayoutFiles, descriptor: Descriptor, blobs: Map<string, BlobSource>): Promise<ManifestSource> {
  const bytes = await readBlob(files, descriptor);
  const rendered = { mediaType: descriptor.mediaType, bytes, digest: descriptor.digest };
  if (isIndexMediaType(descriptor.mediaType)) {
    const index = parseJson<ImageIndex>(bytes, descriptor.digest);
    const children = await Promise.all((index.manifests ?? []).map((child) => loadManifest(files, child, blobs)));
    return { blobs: [], children, render: () => Promise.resolve(rendered) };
  }
  if (!isManifestMediaType(descriptor.mediaType)) {
    throw new ContentError(`${files.label}: ${descriptor.digest} has media type ${descriptor.mediaType}, which is neither an image manifest nor an index.`);
  }
  const manifest = parseJson<ImageManifest>(bytes, descriptor.digest);
  const referenced = [manifest.config, ...(manifest.layers ?? [])].filter((blob) => !blob.urls?.length);
  const sources: BlobSource[] = [];
  for (const blob of referenced) {
    let source = blobs.get(blob.digest);
    if (!source) {
      source = resolved(fileBlob(...(await locateBlob(files, blob)), blob.size, blob.digest, blob.mediaType));
      blobs.set(blob.digest, source);
    }
    sources.push(source);
  }
  return { blobs: sources, children: [], render: () => Promise.resolve(rendered) };
}

async function locateBlob(files: LayoutFiles, descriptor: Descriptor): Promise<[string, number]> {
  const name = blobPath(files, descriptor);
  const location = await files.locate(name);
  if (!location) throw new ContentError(`${files.label} is missing blob ${descriptor.digest} (${name}); the image layout is incomplete.`);
  if (location.size !== descriptor.size) {
    throw new ContentError(`${files.label}: blob ${descriptor.digest} has ${location.size} bytes but its descriptor says ${descriptor.size}; the image is corrupt.`);
  }
  return [location.path, location.offset];
}

async function readBlob(files: LayoutFiles, descriptor: Descriptor): Promise<Buffer> {
  if (descriptor.size > MAX_MANIFEST_BYTES) throw new ContentError(`${files.label}: manifest ${descriptor.digest} is ${descriptor.size} bytes, too large to be one.`);
  const bytes = await files.read(blobPath(files, descriptor));
  if (!bytes) throw new ContentError(`${files.label} is missing manifest ${descriptor.digest}; the image layout is incomplete.`);
  const actual = sha256Digest(bytes);
  if (actual !== descriptor.digest) throw new ContentError(`${files.label}: manifest ${descriptor.digest} does not match its digest (its bytes hash to ${actual}); the image is corrupt.`);
  return bytes;
}

function blobPath(files: LayoutFiles, descriptor: Descriptor): string {
  if (!DIGEST.test(descriptor.digest)) throw new ContentError(`${files.label}: unsupported or malformed digest '${descriptor.digest}' (only sha256 is supported).`);
  return `blobs/sha256/${descriptor.digest.slice('sha256:'.length)}`;
}

export function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    throw new ContentError(`${what} is not valid JSON; the image is corrupt.`);
  }
}
