import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ContentError, InputError } from '../errors.js';
import { OCI_INDEX, isIndexMediaType, isManifestMediaType, type Descriptor } from '../oci/mediaTypes.js';
import { fileBlob, resolved, sha256Digest, type BlobSource, type ManifestSource } from '../oci/content.js';
import { readMember, type TarMember } from '../archive/tar.js';
import { ImageJson, MAX_JSON_BYTES } from './shape.js';

/** Where an OCI image layout's files live: a folder, or the members of a tar (an OCI archive). */
export interface LayoutFiles {
  /** The folder or archive, as the user gave it. */
  path: string;
  /** `imagePath <path>`, the start of every error about the content of these files. */
  label: string;
  /** The file's bytes; undefined when absent. */
  read(name: string): Promise<Buffer | undefined>;
  /** The file's location for streaming: path, offset and size; undefined when absent. */
  locate(name: string): Promise<{ path: string; offset: number; size: number } | undefined>;
}

export function folderFiles(root: string, label: string): LayoutFiles {
  const locate = async (name: string) => {
    const info = await stat(join(root, name)).catch(() => undefined);
    return info?.isFile() ? { path: join(root, name), offset: 0, size: info.size } : undefined;
  };
  return {
    path: root,
    label,
    read: async (name) => {
      const location = await locate(name);
      if (!location) return undefined;
      if (location.size > MAX_JSON_BYTES) throw new ContentError(`${label}: ${name} has ${location.size} bytes, far too many for the JSON file it should be.`);
      return readFile(location.path);
    },
    locate,
  };
}

export function tarFiles(path: string, label: string, members: Map<string, TarMember>, shownPath = path): LayoutFiles {
  return {
    path: shownPath,
    label,
    read: async (name) => {
      const member = members.get(name);
      if (!member) return undefined;
      if (member.size > MAX_JSON_BYTES) throw new ContentError(`${label}: ${name} has ${member.size} bytes, far too many for the JSON file it should be.`);
      return readMember(path, member);
    },
    locate: (name) => {
      const member = members.get(name);
      return Promise.resolve(member && { path, offset: member.offset, size: member.size });
    },
  };
}

// Manifests and indexes are read into memory; the distribution-spec lets registries refuse larger ones.
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/**
 * Reads an OCI image layout (image-spec image-layout.md) into what the push needs. Blobs are
 * pushed byte for byte; manifests are checked against their digests and their shape on the way in,
 * so a malformed layout fails before anything is sent.
 */
export async function loadLayout(files: LayoutFiles, input: string): Promise<ManifestSource> {
  const marker = await files.read('oci-layout');
  const indexBytes = await files.read('index.json');
  if (!marker || !indexBytes) throw new InputError(input, `${files.path} is not an OCI image layout (no oci-layout or index.json).`);
  const layoutFile = new ImageJson(files.label, 'oci-layout');
  layoutFile.string(layoutFile.object(layoutFile.parse(marker), '').imageLayoutVersion, 'imageLayoutVersion');
  const indexFile = new ImageJson(files.label, 'index.json');
  const index = indexFile.object(indexFile.parse(indexBytes), '');
  const descriptors = indexFile.array(index.manifests, 'manifests').map((entry, i) => indexFile.descriptor(entry, `manifests[${i}]`));
  const indexMediaType = indexFile.optionalString(index.mediaType, 'mediaType');
  if (descriptors.length === 0) throw new InputError(input, `${files.path} holds no image (index.json lists no manifests).`);
  const blobs = new Map<string, BlobSource>();
  const load = (descriptor: Descriptor) => loadManifest(files, descriptor, blobs);
  if (descriptors.length === 1) return load(descriptors[0]);
  // Several entries: one multi-platform image written flat into index.json, unless they are
  // differently named images, where pushing them under one tag would be a guess.
  const names = new Set(descriptors.map((d) => d.annotations?.['org.opencontainers.image.ref.name']).filter(Boolean));
  if (names.size > 1) {
    throw new InputError(input, `${files.path} holds ${names.size} differently named images (${[...names].join(', ')}); save just the one to push.`);
  }
  const children = await Promise.all(descriptors.map(load));
  return { blobs: [], children, render: () => Promise.resolve({ mediaType: indexMediaType ?? OCI_INDEX, bytes: indexBytes, digest: sha256Digest(indexBytes) }) };
}

async function loadManifest(files: LayoutFiles, descriptor: Descriptor, blobs: Map<string, BlobSource>): Promise<ManifestSource> {
  const bytes = await readManifestBlob(files, descriptor);
  const rendered = { mediaType: descriptor.mediaType, bytes, digest: descriptor.digest };
  const file = new ImageJson(files.label, blobPath(descriptor));
  const json = file.object(file.parse(bytes), '');
  if (isIndexMediaType(descriptor.mediaType)) {
    const children = file.array(json.manifests, 'manifests').map((entry, i) => file.descriptor(entry, `manifests[${i}]`));
    return { blobs: [], children: await Promise.all(children.map((child) => loadManifest(files, child, blobs))), render: () => Promise.resolve(rendered) };
  }
  if (!isManifestMediaType(descriptor.mediaType)) {
    throw new ContentError(`${files.label}: ${descriptor.digest} has media type ${descriptor.mediaType}, which is neither an image manifest nor an index.`);
  }
  const config = file.descriptor(json.config, 'config');
  const layers = file.array(json.layers, 'layers').map((layer, i) => file.descriptor(layer, `layers[${i}]`));
  // Layers with `urls` (foreign layers) are fetched from there by pullers, never pushed.
  const referenced = [config, ...layers].filter((blob) => !blob.urls?.length);
  const sources: BlobSource[] = [];
  for (const blob of referenced) {
    let source = blobs.get(blob.digest);
    if (!source) {
      const location = await locateBlob(files, blob);
      source = resolved(fileBlob(location.path, location.offset, blob.size, blob.digest, blob.mediaType));
      blobs.set(blob.digest, source);
    }
    sources.push(source);
  }
  return { blobs: sources, children: [], render: () => Promise.resolve(rendered) };
}

async function locateBlob(files: LayoutFiles, descriptor: Descriptor): Promise<{ path: string; offset: number }> {
  const name = blobPath(descriptor);
  const location = await files.locate(name);
  if (!location) throw new ContentError(`${files.label} is missing blob ${descriptor.digest} (${name}); the image layout is incomplete.`);
  if (location.size !== descriptor.size) {
    throw new ContentError(`${files.label}: ${name} has ${location.size} bytes but its descriptor says ${descriptor.size}; the image is corrupt.`);
  }
  return location;
}

async function readManifestBlob(files: LayoutFiles, descriptor: Descriptor): Promise<Buffer> {
  const name = blobPath(descriptor);
  if (descriptor.size > MAX_MANIFEST_BYTES) throw new ContentError(`${files.label}: manifest ${descriptor.digest} is ${descriptor.size} bytes, too large to be one.`);
  const bytes = await files.read(name);
  if (!bytes) throw new ContentError(`${files.label} is missing manifest ${descriptor.digest} (${name}); the image layout is incomplete.`);
  const actual = sha256Digest(bytes);
  if (actual !== descriptor.digest) throw new ContentError(`${files.label}: ${name} does not match its digest (its bytes hash to ${actual}); the image is corrupt.`);
  return bytes;
}

/** Descriptors were shape-checked, so their digests are sha256. */
function blobPath(descriptor: Descriptor): string {
  return `blobs/sha256/${descriptor.digest.slice('sha256:'.length)}`;
}
