// The file system of a build stage as the build changes it: the base image's files (read only
// when an answer depends on them), then one layer per instruction that writes files. Paths are
// absolute and clean (`/app/server.js`; the root is `/`).
import { posix } from 'node:path';
import type { Readable } from 'node:stream';

export type NodeType = 'file' | 'dir' | 'symlink';

/** Where a file's bytes come from; read only when the layer is written. */
export interface Content {
  size: number;
  open(): Readable;
  /** The whole content at once, where that is cheaper than a stream (small files). */
  read?(): Promise<Buffer>;
  /**
   * What the bytes are, known without reading them: a file's device, inode, size, modification and
   * change times (as BuildKit's content-hash cache keys files). Unset when unknown.
   */
  identity?: string;
}

export interface FsNode {
  type: NodeType;
  /** Permission bits plus set-user-id, set-group-id and sticky (07777). */
  mode: number;
  uid: number;
  gid: number;
  linkTarget?: string;
  content?: Content;
  /**
   * Files written by one COPY from one source inode share this key, so the layer stores them as
   * one file and hard links (as BuildKit's copier links them).
   */
  hardLinkGroup?: string;
}

/** What the build may ask of a base image's files; answering can mean reading its layers. */
export interface BaseFiles {
  node(path: string): Promise<FsNode | undefined>;
  children(path: string): Promise<string[]>;
  /** True once answers cost nothing (the layers were read, or the base is `scratch`). */
  readonly known: boolean;
}

/** An empty base: `FROM scratch`. */
export const SCRATCH: BaseFiles = {
  node: (path) => Promise.resolve(path === '/' ? { type: 'dir', mode: 0o755, uid: 0, gid: 0 } : undefined),
  children: () => Promise.resolve([]),
  known: true,
};

/** One instruction's changes: the final state of each path it wrote. */
export class Layer {
  readonly entries = new Map<string, FsNode>();

  constructor(
    /** The history line (`COPY app /app`), also used in messages. */
    readonly createdBy: string,
  ) {}

  get empty(): boolean {
    return this.entries.size === 0;
  }
}

export const DEFAULT_DIR: FsNode = { type: 'dir', mode: 0o755, uid: 0, gid: 0 };

export function parentOf(path: string): string {
  return posix.dirname(path);
}

export function childPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/** Clean absolute path (`//a/./b/../c/` → `/a/c`). */
export function cleanPath(path: string): string {
  const cleaned = posix.normalize(`/${path}`);
  return cleaned.length > 1 ? cleaned.replace(/\/+$/, '') : '/';
}

export class StageFilesystem {
  private readonly own: Map<string, FsNode>;
  private readonly implied: Map<string, Layer>;
  readonly layers: Layer[];

  constructor(
    readonly base: BaseFiles,
    from?: StageFilesystem,
  ) {
    this.own = new Map(from?.own);
    this.implied = new Map(from?.implied);
    this.layers = [...(from?.layers ?? [])];
  }

  /** A stage built on this one (`FROM <stage>`): same files, further layers of its own. */
  fork(): StageFilesystem {
    return new StageFilesystem(this.base, this);
  }

  newLayer(createdBy: string): Layer {
    const layer = new Layer(createdBy);
    this.layers.push(layer);
    return layer;
  }

  /**
   * The node at `path` (no symlinks resolved) when it can be told without reading the base;
   * `'unknown'` when only the base could say. A folder the build implied counts as a folder.
   */
  async peek(path: string): Promise<FsNode | undefined | 'unknown'> {
    const own = this.own.get(path);
    if (own) return own;
    if (this.insideOwnNonDirectory(path)) return undefined;
    if (this.base.known) return this.node(path);
    return this.implied.has(path) ? DEFAULT_DIR : 'unknown';
  }

  /** The node at `path`, reading the base if needed. */
  async node(path: string): Promise<FsNode | undefined> {
    const own = this.own.get(path);
    if (own) return own;
    if (this.insideOwnNonDirectory(path)) return undefined;
    const fromBase = await this.base.node(path);
    if (fromBase) return fromBase;
    return this.implied.has(path) ? DEFAULT_DIR : undefined;
  }

  /** A path below a file or link this build wrote cannot exist. */
  private insideOwnNonDirectory(path: string): boolean {
    for (let parent = parentOf(path); parent !== '/'; parent = parentOf(parent)) {
      const node = this.own.get(parent);
      if (node) return node.type !== 'dir';
    }
    return false;
  }

  /** Names in a folder, sorted, from the base and from this build's layers. */
  async children(path: string): Promise<string[]> {
    const names = new Set(await this.base.children(path));
    const prefix = path === '/' ? '/' : `${path}/`;
    for (const source of [this.own.keys(), this.implied.keys()]) {
      for (const key of source) {
        if (key.startsWith(prefix) && key.length > prefix.length && !key.slice(prefix.length).includes('/')) names.add(key.slice(prefix.length));
      }
    }
    return [...names].sort(compareNames);
  }

  write(layer: Layer, path: string, node: FsNode): void {
    this.own.set(path, node);
    layer.entries.set(path, node);
  }

  /**
   * Records that `layer` needs `path` to exist as a folder, with the owner and mode layer
   * extraction gives a missing parent (0755, root). It is written only if nothing else in the
   * image creates it and the base lacks it (settleImpliedDirs), so an existing base folder keeps
   * its owner and the base need not be read to find out.
   */
  imply(layer: Layer, path: string): void {
    if (this.own.has(path) || this.implied.has(path) || path === '/') return;
    this.implied.set(path, layer);
  }

  /**
   * Turns implied folders that nothing else creates into real entries when the base lacks them,
   * so the image holds the same folders BuildKit would create. Needs the base only for those.
   */
  async settleImpliedDirs(): Promise<void> {
    const paths = [...this.own.keys()];
    for (const [dir, layer] of this.implied) {
      if (this.own.has(dir)) continue;
      const prefix = `${dir}/`;
      if (paths.some((path) => path.startsWith(prefix))) continue;
      if (await this.base.node(dir)) continue;
      layer.entries.set(dir, DEFAULT_DIR);
      this.own.set(dir, DEFAULT_DIR);
    }
  }
}

/** Byte order of UTF-8, which is the order of the layer tar's entries. */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
