// Base images: the FROM name parsed as Docker parses it, the manifest for the build's platform and
// the image config, read from the registry. The base's files are read only when a question about
// them decides the result (a COPY destination that may be an existing folder, an owner name to
// look up in /etc/passwd, COPY --from an image): then its layers are downloaded once, their tar
// headers indexed, and the contents of the few files needed kept in a private temp folder.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { forEachLimited } from '../concurrency.js';
import { ContentError, UserError } from '../errors.js';
import type { Logger } from '../log.js';
import { formatBytes } from '../log.js';
import { readTarStream, type TarMemberHeader } from '../archive/tarReader.js';
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

interface IndexedFile {
  node: FsNode;
  /** The layer whose tar holds the bytes, and the member's path there. */
  layer: number;
  member: string;
}

/** A base image's files, read from its layers the first time a question needs them. */
export class RemoteBaseFiles implements BaseFiles {
  private entries?: Map<string, IndexedFile>;
  private children_?: Map<string, Set<string>>;
  private loading?: Promise<void>;
  private scratch?: Promise<string>;
  private scratchPath?: string;
  private readonly extracted = new Map<string, Promise<void>>();
  private readonly queued = new Map<number, Map<string, { resolve: () => void; reject: (error: unknown) => void }>>();
  private flushing?: Promise<void>;

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
    return this.entries!.get(path)?.node;
  }

  async children(path: string): Promise<string[]> {
    await this.load();
    return [...(this.children_!.get(path) ?? [])].sort(compareNames);
  }

  private load(): Promise<void> {
    this.loading ??= this.index().catch((error: unknown) => {
      this.loading = undefined;
      throw error;
    });
    return this.loading;
  }

  private layerStream(index: number, raw: Readable): Readable {
    const mediaType = this.layers[index].mediaType;
    if (/zstd/.test(mediaType)) {
      raw.destroy();
      throw new UserError(`The base image ${formatImageName(this.name)} has zstd-compressed layers, which this builder cannot read; use a gzip-compressed base.`);
    }
    return /gzip/.test(mediaType) ? raw.pipe(createGunzip()) : raw;
  }

  private async index(): Promise<void> {
    const label = formatImageName(this.name);
    const total = this.layers.reduce((sum, layer) => sum + layer.size, 0);
    this.options.logger.info(`${this.options.where}: reading the file list of ${label} (${this.layers.length} layers, ${formatBytes(total)}) to follow BuildKit exactly here`);
    const perLayer: TarMemberHeader[][] = this.layers.map(() => []);
    await forEachLimited([...this.layers.keys()], 4, async (index) => {
      const stream = this.layerStream(index, await this.options.reader.blob(this.name, this.layers[index].digest));
      await readTarStream(stream, `layer ${index + 1} of ${label}`, (header) => {
        perLayer[index].push(header);
        return undefined;
      });
    });
    const entries = new Map<string, IndexedFile>();
    const children = new Map<string, Set<string>>();
    const remove = (path: string) => {
      entries.delete(path);
      children.get(parentOf(path))?.delete(posix.basename(path));
      const prefix = `${path}/`;
      for (const key of [...entries.keys()]) if (key.startsWith(prefix)) entries.delete(key);
      for (const key of [...children.keys()]) if (key === path || key.startsWith(prefix)) children.delete(key);
    };
    perLayer.forEach((headers, layer) => {
      // Whiteouts (image-spec layer.md) remove what lower layers hold before this layer's files land.
      for (const header of headers) {
        const base = posix.basename(header.path);
        if (!base.startsWith('.wh.')) continue;
        const dir = `/${posix.dirname(header.path)}`.replace(/^\/\.$/, '/');
        if (base === '.wh..wh..opq') for (const name of [...(children.get(dir) ?? [])]) remove(childPath(dir, name));
        else remove(childPath(dir, base.slice(4)));
      }
      for (const header of headers) {
        if (posix.basename(header.path).startsWith('.wh.') || header.path === '' || header.type === 'other') continue;
        const path = `/${header.path}`;
        let entry: IndexedFile;
        if (header.type === 'hardlink') {
          const target = entries.get(`/${header.linkName.replace(/^\/+/, '')}`);
          if (!target) continue;
          target.node.hardLinkGroup ??= `${label}:${target.member}`;
          entry = target;
        } else {
          const type = header.type === 'directory' ? 'dir' : header.type === 'symlink' ? 'symlink' : 'file';
          const node: FsNode = { type, mode: header.mode, uid: header.uid, gid: header.gid };
          if (type === 'symlink') node.linkTarget = header.linkName;
          entry = { node, layer, member: header.path };
          if (type === 'file') node.content = this.contentOf(path, entry, header.size);
        }
        const existing = entries.get(path);
        if (existing && existing.node.type === 'dir' && entry.node.type !== 'dir') remove(path);
        entries.set(path, entry);
        for (let child = path; child !== '/'; child = parentOf(child)) {
          const parent = parentOf(child);
          let names = children.get(parent);
          if (!names) children.set(parent, (names = new Set()));
          names.add(posix.basename(child));
        }
      }
    });
    this.entries = entries;
    this.children_ = children;
  }

  private contentOf(path: string, entry: IndexedFile, size: number) {
    return {
      size,
      prepare: () => this.extract(entry),
      open: () => {
        if (!this.scratchPath || !this.extracted.has(keyOf(entry))) throw new Error(`${path} of ${formatImageName(this.name)} was read before it was fetched`);
        return createReadStream(join(this.scratchPath, fileName(entry)));
      },
    };
  }

  /**
   * Keeps a member's bytes in a private folder (files 0600). Requests made together are served
   * by one download of each layer involved.
   */
  private extract(entry: IndexedFile): Promise<void> {
    const key = keyOf(entry);
    let pending = this.extracted.get(key);
    if (!pending) {
      pending = new Promise<void>((resolve, reject) => {
        let members = this.queued.get(entry.layer);
        if (!members) this.queued.set(entry.layer, (members = new Map<string, { resolve: () => void; reject: (error: unknown) => void }>()));
        members.set(entry.member, { resolve, reject });
      });
      this.extracted.set(key, pending);
      this.flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.flush());
    }
    return pending;
  }

  private async flush(): Promise<void> {
    this.flushing = undefined;
    const batch = [...this.queued];
    this.queued.clear();
    this.scratch ??= mkdtemp(join(this.options.tempDir, 'base-files-')).then((path) => (this.scratchPath = path));
    const folder = await this.scratch;
    await Promise.all(
      batch.map(async ([layer, members]) => {
        try {
          const stream = this.layerStream(layer, await this.options.reader.blob(this.name, this.layers[layer].digest));
          await readTarStream(stream, `layer ${layer + 1} of ${formatImageName(this.name)}`, (header) => {
            if (header.type !== 'file' || !members.has(header.path)) return undefined;
            const out = createWriteStream(join(folder, fileName({ layer, member: header.path })), { mode: 0o600 });
            const waiter = members.get(header.path)!;
            members.delete(header.path);
            return {
              write: (chunk) => new Promise<void>((resolve, reject) => out.write(chunk, (error) => (error ? reject(error) : resolve()))),
              end: async () => {
                out.end();
                await finished(out);
                waiter.resolve();
              },
            };
          });
          for (const [member, waiter] of members) waiter.reject(new ContentError(`${member} is missing from layer ${layer + 1} of ${formatImageName(this.name)}.`));
        } catch (error) {
          for (const waiter of members.values()) waiter.reject(error);
        }
      }),
    );
  }
}

function keyOf(entry: Pick<IndexedFile, 'layer' | 'member'>): string {
  return `${entry.layer}:${entry.member}`;
}

function fileName(entry: Pick<IndexedFile, 'layer' | 'member'>): string {
  return createHash('sha256').update(keyOf(entry)).digest('hex');
}
