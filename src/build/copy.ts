// COPY and ADD of local sources with the semantics of BuildKit's file operation (moby/buildkit
// solver/llbsolver/file and tonistiigi/fsutil copy): wildcard sources, a source folder's contents
// copied into the destination, a file copied into an existing folder by its name, parent folders
// created with `--chown`'s owner and an octal `--chmod`, symbolic links inside folders kept as
// links, hard links within one source kept as hard links, `--exclude` patterns.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { UserError } from '../errors.js';
import { fileSource, readTarEntries, type TarEntryType } from '../archive/tar.js';
import { applyChmod, createdDirectoryMode, type ChmodSpec } from './chmod.js';
import type { IgnoreMatcher, ParentMatches } from './dockerignore.js';
import { childPath, cleanPath, DEFAULT_DIR, parentOf, type Content, type FsNode, type Layer, type StageFilesystem } from './filesystem.js';
import { resolveSource, type SourceNode, type SourceTree } from './sources.js';

export interface Owner {
  uid: number;
  gid: number;
}

export interface CopyOperation {
  /** `COPY` or `ADD`, for messages. */
  instruction: string;
  /** Where the Dockerfile said it (`Dockerfile:12`). */
  where: string;
  source: SourceTree;
  /** Source paths as written (variables expanded), relative to the source's root. */
  paths: string[];
  /** Heredoc sources: file name and content. */
  inline: { name: string; content: string }[];
  /** Absolute destination; a trailing slash is kept (it means "into this folder"). */
  dest: string;
  owner?: Owner;
  chmod?: ChmodSpec;
  excludes?: IgnoreMatcher;
  /** ADD: a local tar archive (plain or gzip) is unpacked into the destination. */
  unpackArchives: boolean;
  /** Private folder for unpacking archives. */
  scratch: string;
  filesystem: StageFilesystem;
  layer: Layer;
}

let copyCalls = 0;

/** A member of an archive ADD unpacks. */
interface ArchiveMember {
  /** Relative, normalised. */
  path: string;
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  linkName: string;
  content?: Content;
}

/** An excluded folder whose contents are still being looked at for files an exception brings back. */
interface PendingDirectory {
  destination: string;
  node: SourceNode;
  created: boolean;
}

/** Whether a source path element has wildcards (fsutil's containsWildcards). */
function hasWildcards(element: string): boolean {
  for (let index = 0; index < element.length; index++) {
    if (element[index] === '\\') index++;
    else if ('*?['.includes(element[index])) return true;
  }
  return false;
}

/** Go's filepath.Match as a regular expression: `*` and `?` never cross `/`, `[^…]` negates. */
function wildcardExpression(pattern: string): RegExp {
  let source = '^';
  for (let index = 0; index < pattern.length; index++) {
    const character = pattern[index];
    if (character === '*') source += '[^/]*';
    else if (character === '?') source += '[^/]';
    else if (character === '\\' && index + 1 < pattern.length) source += `\\${pattern[++index]}`;
    else if (character === '[') {
      const end = pattern.indexOf(']', index + 2);
      if (end === -1) throw new UserError(`COPY source pattern '${pattern}' has an unclosed '['.`);
      let body = pattern.slice(index + 1, end);
      if (body.startsWith('^')) body = `^${body.slice(1)}`;
      source += `[${body.replace(/\\/g, '\\\\')}]`;
      index = end;
    } else source += character.replace(/[.+(){}|$^/]/g, '\\$&');
  }
  return new RegExp(`${source}$`);
}

/** The source paths a (possibly wildcard) COPY source names, as fsutil's ResolveWildcards finds them. */
async function expandSource(tree: SourceTree, path: string): Promise<string[]> {
  const elements = path.split('/').filter(Boolean);
  const first = elements.findIndex(hasWildcards);
  if (first === -1) return [path];
  const fixed = `/${elements.slice(0, first).join('/')}`;
  const pattern = wildcardExpression(elements.slice(first).join('/'));
  const root = await resolveSource(tree, fixed);
  const found: string[] = [];
  const walk = async (dir: string, relative: string) => {
    for (const name of await tree.list(dir)) {
      const rel = relative ? `${relative}/${name}` : name;
      const full = childPath(dir, name);
      const node = await tree.lstat(full);
      if (pattern.test(rel)) {
        found.push(childPath(fixed, rel));
        continue;
      }
      if (node?.type === 'dir') await walk(full, rel);
    }
  };
  const rootNode = await tree.lstat(root);
  if (rootNode?.type === 'dir') await walk(root, '');
  return found;
}

function notFound(operation: CopyOperation, path: string): UserError {
  const hint = operation.source.linksMustStayInside
    ? ' Check the path (relative to the context folder) and that .dockerignore does not exclude it.'
    : ' Check the path in that stage or image.';
  return new UserError(`${operation.where}: ${operation.instruction} source ${path.replace(/^\//, '') || '.'} was not found in ${operation.source.label}.${hint}`);
}

/** Applies one COPY/ADD to the stage's file system, recording what it wrote in the layer. */
export async function copyIntoStage(operation: CopyOperation): Promise<void> {
  const destination = new Destination(operation);
  for (const written of operation.paths) {
    const path = cleanPath(written);
    const matches = await expandSource(operation.source, path);
    if (matches.length === 0 && !hasWildcards(path)) throw notFound(operation, path);
    for (const match of matches) await destination.copyOne(match);
  }
  for (const inline of operation.inline) await destination.copyInline(inline.name, inline.content);
}

/**
 * RootPath on a stage's file system: follows the symbolic links this build or the base holds. An
 * element only the base could answer for is taken as a plain folder: layer extraction follows a
 * base's links in parent paths the same way, so the result is the same without reading the base.
 */
export async function resolveDestination(filesystem: StageFilesystem, path: string, where: string): Promise<string> {
  let hops = 0;
  const walk = async (start: string, elements: string[]): Promise<string> => {
    let current = start;
    for (const name of elements) {
      if (name === '' || name === '.') continue;
      if (name === '..') {
        current = parentOf(current);
        continue;
      }
      const next = childPath(current, name);
      const node = await filesystem.peek(next);
      if (node === 'unknown' || node?.type !== 'symlink') {
        current = next;
        continue;
      }
      if (++hops > 255) throw new UserError(`${where}: too many levels of symbolic links at ${path}.`);
      const target = node.linkTarget ?? '';
      current = await walk(target.startsWith('/') ? '/' : current, target.split('/'));
    }
    return current;
  };
  return walk('/', path.split('/'));
}

/**
 * fsutil's MkdirAll on a resolved path: creates missing folders with the given owner and mode and
 * leaves existing ones alone. A folder with the default owner and mode whose existence only the
 * base knows is implied instead of looked up (see StageFilesystem.imply).
 */
export async function makeDirectories(
  filesystem: StageFilesystem,
  layer: Layer,
  resolved: string,
  created: { mode: number; owner?: Owner },
  where: string,
): Promise<void> {
  if (resolved === '/') return;
  await makeDirectories(filesystem, layer, parentOf(resolved), created, where);
  let node = await filesystem.peek(resolved);
  if (node === 'unknown') {
    const isDefault = created.mode === 0o755 && (created.owner === undefined || (created.owner.uid === 0 && created.owner.gid === 0));
    if (isDefault) {
      filesystem.imply(layer, resolved);
      return;
    }
    node = await filesystem.node(resolved);
  }
  if (node?.type === 'dir') return;
  if (node) throw new UserError(`${where}: cannot create folder ${resolved}: a ${node.type === 'file' ? 'file' : 'symbolic link'} is in the way.`);
  filesystem.write(layer, resolved, { type: 'dir', mode: created.mode, uid: created.owner?.uid ?? 0, gid: created.owner?.gid ?? 0 });
}

class Destination {
  private readonly owner?: Owner;
  private readonly directoryMode: number;

  constructor(private readonly operation: CopyOperation) {
    this.owner = operation.owner;
    this.directoryMode = createdDirectoryMode(operation.chmod);
  }

  private get filesystem(): StageFilesystem {
    return this.operation.filesystem;
  }

  private resolve(path: string): Promise<string> {
    return resolveDestination(this.filesystem, path, this.operation.where);
  }

  private mkdirAll(resolved: string): Promise<void> {
    return makeDirectories(this.filesystem, this.operation.layer, resolved, { mode: this.directoryMode, owner: this.owner }, this.operation.where);
  }

  /** The node at a resolved destination, reading the base when only it can say. */
  private exact(resolved: string): Promise<FsNode | undefined> {
    return this.filesystem.node(resolved);
  }

  private meta(source: SourceNode): Pick<FsNode, 'mode' | 'uid' | 'gid'> {
    const owner = this.owner ?? { uid: source.uid, gid: source.gid };
    const mode = source.type === 'symlink' ? 0o777 : this.operation.chmod ? applyChmod(this.operation.chmod, source.mode, source.type === 'dir') : source.mode;
    return { mode, ...owner };
  }

  /** Where the destination's folder part ends (fsutil Copy's ensureDstPath). */
  private async ensureDestinationParent(): Promise<void> {
    const dest = this.operation.dest;
    const last = dest.slice(dest.lastIndexOf('/') + 1);
    const ensure = last !== '' && last !== '.' ? dest.slice(0, dest.lastIndexOf('/') + 1) : dest;
    if (ensure) await this.mkdirAll(await this.resolve(ensure));
  }

  async copyOne(sourcePath: string): Promise<void> {
    const { source } = this.operation;
    await this.ensureDestinationParent();
    let destination = await this.resolve(cleanPath(this.operation.dest));
    const followed = await resolveSource(source, sourcePath);
    const node = await source.lstat(followed);
    if (!node) throw notFound(this.operation, sourcePath);
    if (node.type === 'other') throw new UserError(`${this.operation.where}: ${sourcePath.slice(1)} in ${source.label} is a device or pipe, which a build can not copy.`);
    if (node.type === 'file' && this.operation.unpackArchives && node.content && (await unpackIfArchive(this, node.content, sourcePath, this.operation.scratch))) return;
    if (node.type === 'dir') {
      // A folder's contents go into the destination, created if missing; an existing one keeps its owner and mode.
      await this.mkdirAll(destination);
      await this.copyChildren(followed, destination, '', [], `${++copyCalls}`);
      return;
    }
    // A file lands inside an existing folder under its own name; otherwise the destination is its name.
    const existing = this.operation.dest.endsWith('/') ? await this.peekAsDirectory(destination) : await this.exact(destination);
    if (existing?.type === 'dir') destination = childPath(destination, posix.basename(sourcePath));
    await this.mkdirAll(parentOf(destination));
    await this.writeFile(destination, node, `${++copyCalls}`);
  }

  /** With a trailing slash the destination was made a folder above; only a folder from this build needs no look. */
  private async peekAsDirectory(resolved: string): Promise<FsNode | undefined> {
    const node = await this.filesystem.peek(resolved);
    return node === 'unknown' ? DEFAULT_DIR : node;
  }

  private async writeFile(destination: string, node: SourceNode, call: string): Promise<void> {
    const existing = await this.filesystem.peek(destination);
    if (existing !== 'unknown' && existing?.type === 'dir') throw new UserError(`${this.operation.where}: cannot replace the folder ${destination} with a file.`);
    const written: FsNode = { type: node.type === 'symlink' ? 'symlink' : 'file', ...this.meta(node), linkTarget: node.linkTarget, content: node.content };
    if (node.inode) written.hardLinkGroup = `${call}:${node.inode}`;
    this.filesystem.write(this.operation.layer, destination, written);
  }

  private async copyChildren(sourceDir: string, destinationDir: string, relative: string, parentMatches: ParentMatches, call: string, pending: PendingDirectory[] = []): Promise<void> {
    const { source, excludes } = this.operation;
    for (const name of await source.list(sourceDir)) {
      const sourcePath = childPath(sourceDir, name);
      const destinationPath = childPath(destinationDir, name);
      const rel = relative ? `${relative}/${name}` : name;
      let excluded = false;
      let matches: ParentMatches = [];
      if (excludes && !excludes.empty) {
        ({ excluded, matches } = excludes.match(rel, parentMatches));
        if (excluded && !excludes.hasExceptions) continue;
      }
      const node = await source.lstat(sourcePath);
      if (!node) continue;
      if (node.type === 'other') throw new UserError(`${this.operation.where}: ${sourcePath.slice(1)} in ${source.label} is a device or pipe, which a build can not copy.`);
      if (excluded && node.type !== 'dir') continue;
      if (node.type === 'dir') {
        if (excluded) {
          await this.copyChildren(sourcePath, destinationPath, rel, matches, call, [...pending, { destination: destinationPath, node, created: false }]);
          continue;
        }
        this.createPending(pending);
        await this.writeDirectory(destinationPath, node);
        await this.copyChildren(sourcePath, destinationPath, rel, matches, call);
        continue;
      }
      this.createPending(pending);
      await this.writeFile(destinationPath, node, call);
    }
  }

  /** Excluded folders that hold an included file are created when that file is. */
  private createPending(pending: PendingDirectory[]): void {
    for (const entry of pending) {
      if (entry.created) continue;
      entry.created = true;
      this.filesystem.write(this.operation.layer, entry.destination, { type: 'dir', ...this.meta(entry.node) });
    }
  }

  private async writeDirectory(destination: string, node: SourceNode): Promise<void> {
    const existing = await this.filesystem.peek(destination);
    if (existing !== 'unknown' && existing && existing.type !== 'dir') {
      throw new UserError(`${this.operation.where}: cannot copy the folder ${destination}: a ${existing.type === 'file' ? 'file' : 'symbolic link'} is in the way.`);
    }
    // Folders inside a copied folder take the source's owner and mode, also when they exist already.
    this.filesystem.write(this.operation.layer, destination, { type: 'dir', ...this.meta(node) });
  }

  /** A heredoc source: a 0644 file named after its marker. */
  async copyInline(name: string, text: string): Promise<void> {
    const data = Buffer.from(text, 'utf8');
    const identity = createHash('sha256').update(data).digest('hex');
    const node: SourceNode = { type: 'file', mode: 0o644, uid: 0, gid: 0, content: { size: data.length, open: () => Readable.from([data]), identity } };
    await this.ensureDestinationParent();
    let destination = await this.resolve(cleanPath(this.operation.dest));
    const existing = this.operation.dest.endsWith('/') ? await this.peekAsDirectory(destination) : await this.exact(destination);
    if (existing?.type === 'dir') destination = childPath(destination, posix.basename(cleanPath(name)));
    await this.mkdirAll(parentOf(destination));
    await this.writeFile(destination, node, `${++copyCalls}`);
  }

  /** ADD of a tar archive: its members land under the destination folder (moby's Untar). */
  async unpack(members: ArchiveMember[]): Promise<void> {
    const destination = await this.resolve(cleanPath(this.operation.dest));
    await this.mkdirAll(destination);
    const call = `${++copyCalls}`;
    for (const { content, ...header } of members) {
      const path = cleanPath(`${destination}/${header.path}`);
      if (path === destination) continue;
      const owner = this.owner ?? { uid: header.uid, gid: header.gid };
      await this.mkdirAll(parentOf(path));
      if (header.type === 'directory') this.filesystem.write(this.operation.layer, path, { type: 'dir', mode: header.mode, ...owner });
      else if (header.type === 'symlink') this.filesystem.write(this.operation.layer, path, { type: 'symlink', mode: 0o777, ...owner, linkTarget: header.linkName });
      else if (header.type === 'hardlink') {
        const target = await this.filesystem.peek(cleanPath(`${destination}/${header.linkName}`));
        if (target === 'unknown' || !target || target.type !== 'file') throw new UserError(`${this.operation.where}: the archive's hard link ${header.path} names ${header.linkName}, which it does not hold.`);
        target.hardLinkGroup ??= `${call}:${header.linkName}`;
        this.filesystem.write(this.operation.layer, path, { ...target, hardLinkGroup: target.hardLinkGroup });
      } else if (header.type === 'file') this.filesystem.write(this.operation.layer, path, { type: 'file', mode: header.mode, ...owner, content });
    }
  }
}

/** Magic numbers of compressions BuildKit would unpack but this builder cannot. */
const OTHER_COMPRESSIONS: [string, Buffer][] = [
  ['bzip2', Buffer.from('BZh')],
  ['xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])],
  ['zstd', Buffer.from([0x28, 0xb5, 0x2f, 0xfd])],
];

async function readHead(content: Content, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  const stream = content.open();
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    total += chunk.length;
    if (total >= bytes) break;
  }
  stream.destroy();
  return Buffer.concat(chunks).subarray(0, bytes);
}

function looksLikeTarHeader(block: Buffer): boolean {
  if (block.length < 512) return false;
  let sum = 0;
  for (let index = 0; index < 512; index++) sum += index >= 148 && index < 156 ? 0x20 : block[index];
  const stored = parseInt(block.subarray(148, 156).toString('latin1').replace(/\0.*$/, '').trim(), 8);
  return sum === stored;
}

/**
 * ADD unpacks a local file that is a tar archive, plain or compressed (BuildKit decides by reading
 * the first member). Returns false for any other file, which is then copied as it is.
 */
async function unpackIfArchive(destination: Destination, content: Content, sourcePath: string, scratch: string): Promise<boolean> {
  const head = await readHead(content, 512);
  const gzipped = head[0] === 0x1f && head[1] === 0x8b;
  const other = OTHER_COMPRESSIONS.find(([, magic]) => head.subarray(0, magic.length).equals(magic));
  if (other) {
    throw new UserError(
      `ADD ${sourcePath.slice(1)}: unpacking ${other[0]} archives needs a runtime; unpack it in a script step and COPY the folder, recompress it with gzip, or use the BuildKit builder.`,
    );
  }
  const first = gzipped ? await readHead({ size: 0, open: () => content.open().pipe(createGunzip()) }, 512) : head;
  if (!looksLikeTarHeader(first)) return false;
  // Members are read later by their offset in the uncompressed archive, kept in the private scratch folder.
  const archive = join(scratch, `add-${++copyCalls}.tar`);
  await pipeline(gzipped ? content.open().pipe(createGunzip()) : content.open(), createWriteStream(archive, { mode: 0o600 }));
  const handle = await open(archive, 'r');
  const members: ArchiveMember[] = [];
  try {
    for (const entry of readTarEntries(fileSource(handle.fd, (await handle.stat()).size), `ADD ${sourcePath.slice(1)}`)) {
      const { size, dataOffset } = entry;
      const identity = content.identity && `${content.identity}#${dataOffset}`;
      const member: Content = { size, open: () => (size > 0 ? createReadStream(archive, { start: dataOffset, end: dataOffset + size - 1 }) : Readable.from([])), identity };
      const path = posix.normalize(entry.name).replace(/^(\.\/)+|^\/+/, '').replace(/\/$/, '');
      members.push({ path, type: entry.type, mode: entry.mode & 0o7777, uid: entry.uid, gid: entry.gid, linkName: entry.linkName, content: entry.type === 'file' ? member : undefined });
    }
  } finally {
    await handle.close();
  }
  await destination.unpack(members);
  return true;
}
