// Base images: the FROM name parsed as Docker parses it, the manifest for the build's platform and
// the image config, read from the registry. The base's files are read only when a question about
// them decides the result (a COPY destination that may be an existing folder, an owner name to
// look up in /etc/passwd, COPY --from an image): then its layers are downloaded once into a
// private temp folder, decompressed, and indexed by their tar headers; file contents are read from
// there by offset.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { forEachLimited } from '../concurrency.js';
import { ContentError, UserError } from '../errors.js';
import type { Logger } from '../log.js';
import { formatBytes } from '../log.js';
import { fileSource, readTarEntries } from '../archive/tar.js';
import type { RenderedManifest } from '../oci/content.js';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST, isIndexMediaType, type Descriptor, type ImageIndex, type ImageManifest } from '../oci/mediaTypes.js';
import { childPath, compareNames, parentOf, type BaseFiles, type FsNode } from './filesystem.js';
import { formatPlatform, platformMatches, type ImageConfig, type Platform } from './imageConfig.js';

export interface ImageName {
  /** Registry host (`contoso.azurecr.io`, `localhost:5000`, `docker.io`). */
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

/** What the build reads from registries; the registry session implements it. */
export interface ImageReader {
  /** The manifest or index `reference` (tag or digest) names; undefined when there is none. */
  manifest(image: ImageName, reference: string, accept: string[]): Promise<RenderedManifest | undefined>;
  /** A blob's bytes as they download. */
  blob(image: ImageName, digest: string): Promise<Readable>;
}

const NAME_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;

/**
 * Docker's normalised names (distribution/reference ParseNormalizedNamed): a first element with a
 * dot or a port, or `localhost`, is the registry; otherwise it is Docker Hub, where one-element
 * names live under `library/`. No tag and no digest means `latest`.
 */
export function parseImageName(text: string): ImageName | undefined {
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!/^sha256:[a-f0-9]{64}$/.test(digest)) return undefined;
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) return undefined;
  }
  const parts = rest.split('/');
  let registry = 'docker.io';
  if (parts.length > 1 && (parts[0].includes('.') || parts[0].includes(':') || parts[0] === 'localhost')) registry = parts.shift()!;
  if (registry === 'docker.io' && parts.length === 1) parts.unshift('library');
  if (parts.length === 0 || !parts.every((part) => NAME_COMPONENT.test(part))) return undefined;
  return { registry, repository: parts.join('/'), tag: tag ?? (digest ? undefined : 'latest'), digest };
}

export function formatImageName(name: ImageName): string {
  return `${name.registry}/${name.repository}${name.tag ? `:${name.tag}` : ''}${name.digest ? `@${name.digest}` : ''}`;
}

export interface BaseImage {
  name: ImageName;
  /** Digest of the platform's image manifest. */
  digest: string;
  manifest: ImageManifest;
  manifestMediaType: string;
  config: ImageConfig;
  files: RemoteBaseFiles;
}

const MANIFEST_TYPES = [OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    throw new ContentError(`${what} is not valid JSON.`);
  }
}

async function readAll(stream: Readable, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limit) {
      stream.destroy();
      throw new ContentError(`${what} is larger than ${formatBytes(limit)}; it is not an image config.`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export interface ResolveBaseOptions {
  reader: ImageReader;
  platform: Platform;
  /** Where to keep extracted base files; a private folder is made inside. */
  tempDir: string;
  logger: Logger;
  /** `Dockerfile:3`, for messages. */
  where: string;
}

/** Reads the base image's manifest for the platform and its config. */
export async function resolveBaseImage(text: string, options: ResolveBaseOptions): Promise<BaseImage> {
  const name = parseImageName(text);
  if (!name) throw new UserError(`${options.where}: '${text}' is not a valid image name.`);
  const { reader, platform } = options;
  const label = formatImageName(name);
  const top = await reader.manifest(name, name.digest ?? name.tag ?? 'latest', MANIFEST_TYPES);
  if (!top) throw new UserError(`${options.where}: the base image ${label} does not exist in its registry. Check the name and tag, or import it first (PrivateAcrImport).`);
  let manifestBytes = top;
  if (isIndexMediaType(top.mediaType)) {
    const index = parseJson<ImageIndex>(top.bytes, `the index of ${label}`);
    const candidates = (index.manifests ?? []).filter((entry) => entry.platform && platformMatches(entry.platform, platform));
    const exact = candidates.find((entry) => (entry.platform?.variant ?? '') === (platform.variant ?? '')) ?? candidates[0];
    if (!exact) {
      const offered = (index.manifests ?? []).map((entry) => entry.platform).filter((p) => p && p.os !== 'unknown').map((p) => formatPlatform(p!));
      throw new UserError(`${options.where}: the base image ${label} has no ${formatPlatform(platform)} image (it has ${offered.join(', ') || 'none'}). Build for one of those platforms, or import the base for this one.`);
    }
    const child = await reader.manifest(name, exact.digest, MANIFEST_TYPES);
    if (!child) throw new ContentError(`The index of ${label} names ${exact.digest}, which the registry does not hold.`);
    manifestBytes = child;
  }
  if (isIndexMediaType(manifestBytes.mediaType)) throw new ContentError(`The index of ${label} nests another index; the build cannot choose a platform from it.`);
  const manifest = parseJson<ImageManifest>(manifestBytes.bytes, `the manifest of ${label}`);
  if (!manifest.config?.digest || !Array.isArray(manifest.layers)) throw new ContentError(`The manifest of ${label} is not an image manifest.`);
  const configBytes = await readAll(await reader.blob(name, manifest.config.digest), 8 * 1024 * 1024, `the config of ${label}`);
  const config = parseJson<ImageConfig>(configBytes, `the config of ${label}`);
  if (!isIndexMediaType(top.mediaType) && !platformMatches({ os: config.os, architecture: config.architecture, variant: config.variant }, platform)) {
    const has = formatPlatform({ os: config.os, architecture: config.architecture, variant: config.variant });
    throw new UserError(`${options.where}: the base image ${label} is for ${has} only, not ${formatPlatform(platform)}. Build for ${has}, or use a multi-platform base.`);
  }
  const files = new RemoteBaseFiles(name, manifest.layers, options);
  return { name, digest: manifestBytes.digest, manifest, manifestMediaType: manifestBytes.mediaType, config, files };
}

/** A base image's files, read from its layers the first time a question needs them. */
export class RemoteBaseFiles implements BaseFiles {
  private entries?: Map<string, FsNode>;
  private folders?: Map<string, Set<string>>;
  private loading?: Promise<void>;

  constructor(
    private readonly name: ImageName,
    private readonly layers: Descriptor[],
    private readonly options: ResolveBaseOptions,
  ) {}

  get known(): boolean {
    return this.entries !== undefined;
  }

  async node(path: string): Promise<FsNode | undefined> {
    await this.load();
    if (path === '/') return { type: 'dir', mode: 0o755, uid: 0, gid: 0 };
    return this.entries!.get(path);
  }

  async children(path: string): Promise<string[]> {
    await this.load();
    return [...(this.folders!.get(path) ?? [])].sort(compareNames);
  }

  private load(): Promise<void> {
    this.loading ??= this.index().catch((error: unknown) => {
      this.loading = undefined;
      throw error;
    });
    return this.loading;
  }

  /** Downloads and decompresses one layer into the private scratch folder (0600). */
  private async fetchLayer(index: number, folder: string): Promise<string> {
    const layer = this.layers[index];
    if (/zstd/.test(layer.mediaType)) {
      throw new UserError(`The base image ${formatImageName(this.name)} has zstd-compressed layers, which this builder cannot read; use a gzip-compressed base.`);
    }
    const raw = await this.options.reader.blob(this.name, layer.digest);
    const path = join(folder, `layer-${index}.tar`);
    await pipeline(/gzip/.test(layer.mediaType) ? raw.pipe(createGunzip()) : raw, createWriteStream(path, { mode: 0o600 })).catch((error: Error) => {
      throw new ContentError(`Layer ${index + 1} of ${formatImageName(this.name)} could not be read (${error.message}).`);
    });
    return path;
  }

  private async index(): Promise<void> {
    const label = formatImageName(this.name);
    const total = this.layers.reduce((sum, layer) => sum + layer.size, 0);
    this.options.logger.info(`${this.options.where}: reading the files of ${label} (${this.layers.length} layers, ${formatBytes(total)}), as this build depends on them`);
    const folder = await mkdtemp(join(this.options.tempDir, 'base-'));
    const files: string[] = [];
    await forEachLimited([...this.layers.keys()], 4, async (index) => void (files[index] = await this.fetchLayer(index, folder)));
    const entries = new Map<string, FsNode>();
    const folders = new Map<string, Set<string>>();
    const remove = (path: string) => {
      entries.delete(path);
      folders.get(parentOf(path))?.delete(posix.basename(path));
      const prefix = `${path}/`;
      for (const key of [...entries.keys()]) if (key.startsWith(prefix)) entries.delete(key);
      for (const key of [...folders.keys()]) if (key === path || key.startsWith(prefix)) folders.delete(key);
    };
    const add = (path: string, node: FsNode) => {
      const existing = entries.get(path);
      if (existing?.type === 'dir' && node.type !== 'dir') remove(path);
      entries.set(path, node);
      for (let child = path; child !== '/'; child = parentOf(child)) {
        const parent = parentOf(child);
        let names = folders.get(parent);
        if (!names) folders.set(parent, (names = new Set()));
        names.add(posix.basename(child));
      }
    };
    for (const [index, file] of files.entries()) {
      const handle = await open(file, 'r');
      try {
        const members = [...readTarEntries(fileSource(handle.fd, (await handle.stat()).size), `layer ${index + 1} of ${label}`)].map((entry) => ({
          ...entry,
          path: `/${entry.name}`.replace(/\/+$/, '').replace(/^\/(\.\/)+/, '/').replace(/\/\.$/, '') || '/',
        }));
        // Whiteouts (image-spec layer.md) remove what lower layers hold before this layer's files land.
        for (const member of members) {
          const base = posix.basename(member.path);
          if (!base.startsWith('.wh.')) continue;
          const dir = parentOf(member.path);
          if (base === '.wh..wh..opq') for (const name of [...(folders.get(dir) ?? [])]) remove(childPath(dir, name));
          else remove(childPath(dir, base.slice(4)));
        }
        for (const member of members) {
          if (member.path === '/' || posix.basename(member.path).startsWith('.wh.') || member.type === 'other') continue;
          if (member.type === 'hardlink') {
            const target = entries.get(`/${member.linkName}`.replace(/^\/(\.\/)+/, '/'));
            if (target?.type !== 'file') continue;
            target.hardLinkGroup ??= `${label}:${member.linkName}`;
            add(member.path, { ...target });
            continue;
          }
          const node: FsNode = { type: member.type === 'directory' ? 'dir' : member.type === 'symlink' ? 'symlink' : 'file', mode: member.mode & 0o7777, uid: member.uid, gid: member.gid };
          if (member.type === 'symlink') node.linkTarget = member.linkName;
          if (member.type === 'file') {
            const { dataOffset, size } = member;
            node.content = {
              size,
              open: () => (size > 0 ? createReadStream(file, { start: dataOffset, end: dataOffset + size - 1 }) : Readable.from([])),
              identity: `${this.layers[index].digest}:${member.name}`,
            };
          }
          add(member.path, node);
        }
      } finally {
        await handle.close();
      }
    }
    this.entries = entries;
    this.folders = folders;
  }
}
