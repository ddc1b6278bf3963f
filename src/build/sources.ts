// Where COPY and ADD read from: the build context on the agent's disk (with `.dockerignore`
// applied, as BuildKit's client applies it before sending), or the file system of another stage
// or image (`COPY --from`). Nothing outside the context folder is ever read: a symbolic link that
// would lead out of it fails the build.
import { createReadStream, lstatSync, readdirSync, readFileSync, readlinkSync, type Dirent } from 'node:fs';
import { posix } from 'node:path';
import { UserError } from '../errors.js';
import type { IgnoreMatcher, ParentMatches } from './dockerignore.js';
import { childPath, compareNames, parentOf, type Content, type StageFilesystem } from './filesystem.js';

export interface SourceNode {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  uid: number;
  gid: number;
  linkTarget?: string;
  content?: Content;
  /** Identity of the underlying file when several names share it (hard links). */
  inode?: string;
}

export interface SourceTree {
  /** `the build context`, `stage "builder"` … for messages. */
  readonly label: string;
  /** Whether a symbolic link may point outside the tree (then the build fails) or is kept inside it, as BuildKit resolves links in images. */
  readonly linksMustStayInside: boolean;
  lstat(path: string): Promise<SourceNode | undefined>;
  /** Sorted names in a folder. */
  list(path: string): Promise<string[]>;
}

/** A symbolic link of the context that leads outside it. */
class SymlinkEscapeError extends UserError {}

const MAX_LINK_HOPS = 255;

/**
 * Resolves every symbolic link along `path` (the last element too), as BuildKit's RootPath does:
 * link targets are relative to the link's folder, absolute ones to the tree's root. In the build
 * context a link that leaves it is an error; in an image it stays at the root, as in BuildKit.
 */
export async function resolveSource(tree: SourceTree, path: string): Promise<string> {
  let hops = 0;
  const walk = async (start: string, remaining: string[]): Promise<string> => {
    let current = start;
    for (let index = 0; index < remaining.length; index++) {
      const name = remaining[index];
      if (name === '' || name === '.') continue;
      if (name === '..') {
        if (current === '/') {
          if (tree.linksMustStayInside && hops > 0) throw escape(tree, path);
          continue;
        }
        current = parentOf(current);
        continue;
      }
      const next = childPath(current, name);
      const node = await tree.lstat(next);
      if (node?.type !== 'symlink') {
        current = next;
        continue;
      }
      if (++hops > MAX_LINK_HOPS) throw new UserError(`Too many levels of symbolic links in ${tree.label} at ${path}.`);
      const target = node.linkTarget ?? '';
      if (target.startsWith('/') && tree.linksMustStayInside) throw escape(tree, path, next, target);
      const base = target.startsWith('/') ? '/' : current;
      current = await walk(base, target.split('/'));
    }
    return current;
  };
  return walk('/', path.split('/'));
}

function escape(tree: SourceTree, path: string, link?: string, target?: string): SymlinkEscapeError {
  const which = link ? `the symbolic link ${link.slice(1)} → ${target}` : 'a symbolic link';
  return new SymlinkEscapeError(`COPY source ${path.slice(1) || '.'}: ${which} in ${tree.label} points outside it; only files inside the build context can be copied. Copy the target into the context, or make the link relative and inside it.`);
}

// The context is read with synchronous metadata calls and whole-file reads of small files: a
// node_modules folder is thousands of tiny files, and four thread-pool hops for each (open, stat,
// read, close) cost far more than the bytes, while compression needs that pool.
function lstatOrNothing(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

function readdirOrNothing(path: string): Dirent[] {
  try {
    return readdirSync(path, { withFileTypes: true });
  } catch {
    return [];
  }
}

/** The build context folder as BuildKit's client sends it: `.dockerignore` applied, owners reset to root. */
export class ContextTree implements SourceTree {
  readonly label = 'the build context';
  readonly linksMustStayInside = true;
  private readonly matches = new Map<string, { excluded: boolean; matches: ParentMatches; skipped: boolean }>();
  private readonly holdsIncluded = new Map<string, Promise<boolean>>();

  constructor(
    readonly root: string,
    private readonly ignore: IgnoreMatcher,
  ) {}

  /** `path` is clean and absolute within the context (`/a/b`). */
  private onDisk(path: string): string {
    return path === '/' ? this.root : this.root + path;
  }

  /** The `.dockerignore` verdict of a path relative to the context (`a/b`), computed down from the root. */
  private verdict(relative: string): { excluded: boolean; matches: ParentMatches; skipped: boolean } {
    const cached = this.matches.get(relative);
    if (cached) return cached;
    const parent = posix.dirname(relative);
    const parentVerdict = parent === '.' ? { excluded: false, matches: [] as ParentMatches, skipped: false } : this.verdict(parent);
    let verdict;
    if (parentVerdict.skipped) verdict = { excluded: true, matches: parentVerdict.matches, skipped: true };
    else {
      const { excluded, matches } = this.ignore.match(relative, parentVerdict.matches);
      verdict = { excluded, matches, skipped: excluded && !this.ignore.mayIncludeInside(relative) };
    }
    this.matches.set(relative, verdict);
    return verdict;
  }

  /** An excluded folder is still sent when an exception brings back something inside it. */
  private async includesSomething(relative: string): Promise<boolean> {
    let pending = this.holdsIncluded.get(relative);
    if (!pending) {
      pending = (async () => {
        const names = readdirOrNothing(this.onDisk(`/${relative}`)).map((entry) => entry.name);
        for (const name of names) {
          const child = `${relative}/${name}`;
          const verdict = this.verdict(child);
          if (verdict.skipped) continue;
          if (!verdict.excluded) return true;
          const info = lstatOrNothing(this.onDisk(`/${child}`));
          if (info?.isDirectory() && (await this.includesSomething(child))) return true;
        }
        return false;
      })();
      this.holdsIncluded.set(relative, pending);
    }
    return pending;
  }

  private async present(path: string, isDirectory: boolean): Promise<boolean> {
    if (path === '/' || this.ignore.empty) return true;
    const relative = path.slice(1);
    const verdict = this.verdict(relative);
    if (!verdict.excluded) return true;
    if (verdict.skipped || !isDirectory) return false;
    return this.includesSomething(relative);
  }

  async lstat(path: string): Promise<SourceNode | undefined> {
    const file = this.onDisk(path);
    const info = lstatOrNothing(file);
    if (!info || !(await this.present(path, info.isDirectory()))) return undefined;
    const mode = info.mode & 0o7777;
    const inode = info.nlink > 1 && info.isFile() ? `${info.dev}:${info.ino}` : undefined;
    if (info.isDirectory()) return { type: 'dir', mode, uid: 0, gid: 0 };
    if (info.isSymbolicLink()) return { type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkTarget: readlinkSync(file) };
    if (info.isFile()) {
      const size = info.size;
      const content = {
        size,
        open: () => createReadStream(file, { highWaterMark: Math.max(64 * 1024, Math.min(size, 1024 * 1024)) }),
        read: () => Promise.resolve(readFileSync(file)),
        identity: `${info.dev}:${info.ino}:${size}:${info.mtimeMs}:${info.ctimeMs}`,
      };
      return { type: 'file', mode, uid: 0, gid: 0, inode, content };
    }
    return { type: 'other', mode, uid: 0, gid: 0 };
  }

  async list(path: string): Promise<string[]> {
    const entries = readdirOrNothing(this.onDisk(path));
    const names: string[] = [];
    for (const entry of entries) {
      // Sockets are not files a build can copy; BuildKit's client drops them too.
      if (entry.isSocket()) continue;
      if (await this.present(childPath(path, entry.name), entry.isDirectory())) names.push(entry.name);
    }
    return names.sort(compareNames);
  }
}

/** A stage's (or an image's) file system as a COPY --from source. */
export class StageTree implements SourceTree {
  readonly linksMustStayInside = false;

  constructor(
    readonly label: string,
    private readonly filesystem: StageFilesystem,
  ) {}

  async lstat(path: string): Promise<SourceNode | undefined> {
    const node = await this.filesystem.node(path);
    if (!node) return undefined;
    return { type: node.type, mode: node.mode, uid: node.uid, gid: node.gid, linkTarget: node.linkTarget, content: node.content, inode: node.hardLinkGroup };
  }

  list(path: string): Promise<string[]> {
    return this.filesystem.children(path);
  }
}
