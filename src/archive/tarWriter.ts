// Headers of a POSIX (pax) tar archive, for writers that stream member contents themselves. Every
// field that could vary between machines is given by the caller (owner numbers, mode, mtime) or
// left empty (user and group names, device numbers), so the same entries give the same bytes.
// Values ustar cannot hold (long or non-ASCII names and link targets, large sizes or ids) go into a
// pax extended header before the member (POSIX.1-2001 "pax Interchange Format").

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'directory';

export interface TarEntryHeader {
  /** Slash-separated path without a leading slash; directories get their trailing slash here. */
  path: string;
  type: TarEntryType;
  /** Permission bits plus set-user-id, set-group-id and sticky (07777). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of content that follow (regular files only). */
  size: number;
  mtimeSeconds: number;
  /** Target of a symbolic link, or the earlier member a hard link names. */
  linkName?: string;
}

export const TAR_BLOCK = 512;

const TYPE_FLAGS: Record<TarEntryType, string> = { file: '0', hardlink: '1', symlink: '2', directory: '5' };

/** Largest value an octal field of `length` bytes (with its terminating NUL) can hold. */
function octalLimit(length: number): number {
  return 8 ** (length - 1) - 1;
}

function isPlainAscii(text: string): boolean {
  return /^[\x20-\x7e]*$/.test(text);
}

/** ustar keeps up to 100 bytes of name and 155 of prefix, split at a `/`; undefined if it cannot. */
function splitName(name: string): { name: string; prefix: string } | undefined {
  if (!isPlainAscii(name)) return undefined;
  if (name.length <= 100) return { name, prefix: '' };
  for (let cut = name.indexOf('/'); cut !== -1; cut = name.indexOf('/', cut + 1)) {
    const prefix = name.slice(0, cut);
    const rest = name.slice(cut + 1);
    if (prefix.length <= 155 && rest.length > 0 && rest.length <= 100) return { name: rest, prefix };
  }
  return undefined;
}

/** One pax record, `"<length> <key>=<value>\n"`, whose length counts its own digits. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (Buffer.byteLength(`${length}${body}`) !== length) length = Buffer.byteLength(`${length}${body}`);
  return `${length}${body}`;
}

function ustarBlock(fields: { name: string; prefix: string; mode: number; uid: number; gid: number; size: number; mtime: number; type: string; linkName: string }): Buffer {
  const block = Buffer.alloc(TAR_BLOCK);
  const text = (offset: number, length: number, value: string) => block.write(value, offset, length, 'utf8');
  const octal = (offset: number, length: number, value: number) => text(offset, length, `${value.toString(8).padStart(length - 1, '0')}\0`);
  text(0, 100, fields.name);
  octal(100, 8, fields.mode);
  octal(108, 8, fields.uid);
  octal(116, 8, fields.gid);
  octal(124, 12, fields.size);
  octal(136, 12, fields.mtime);
  text(148, 8, ' '.repeat(8));
  text(156, 1, fields.type);
  text(157, 100, fields.linkName);
  text(257, 8, 'ustar\u000000');
  text(345, 155, fields.prefix);
  const checksum = block.reduce((sum, byte) => sum + byte, 0);
  text(148, 8, `${checksum.toString(8).padStart(6, '0')}\0 `);
  return block;
}

/** The header block(s) of one member: a pax header first when ustar cannot hold a value. */
export function tarHeader(entry: TarEntryHeader): Buffer {
  const records: string[] = [];
  const split = splitName(entry.path);
  if (!split) records.push(paxRecord('path', entry.path));
  const linkName = entry.linkName ?? '';
  const linkFits = isPlainAscii(linkName) && linkName.length <= 100;
  if (!linkFits) records.push(paxRecord('linkpath', linkName));
  const numbers = { size: entry.size, uid: entry.uid, gid: entry.gid } as const;
  const limits = { size: octalLimit(12), uid: octalLimit(8), gid: octalLimit(8) } as const;
  for (const key of ['size', 'uid', 'gid'] as const) if (numbers[key] > limits[key]) records.push(paxRecord(key, String(numbers[key])));
  const blocks: Buffer[] = [];
  if (records.length > 0) {
    const body = Buffer.from(records.join(''), 'utf8');
    // The pax header's own name is informational; a fixed one keeps the archive reproducible.
    blocks.push(
      ustarBlock({ name: 'PaxHeaders/entry', prefix: '', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: entry.mtimeSeconds, type: 'x', linkName: '' }),
      body,
      tarPadding(body.length),
    );
  }
  const name = split ?? { name: entry.path.slice(0, 100).replace(/[^\x20-\x7e]/g, '_'), prefix: '' };
  blocks.push(
    ustarBlock({
      ...name,
      mode: entry.mode & 0o7777,
      uid: Math.min(entry.uid, limits.uid),
      gid: Math.min(entry.gid, limits.gid),
      size: Math.min(entry.size, limits.size),
      mtime: entry.mtimeSeconds,
      type: TYPE_FLAGS[entry.type],
      linkName: linkFits ? linkName : '',
    }),
  );
  return Buffer.concat(blocks);
}

/** Zeros that round a member's content up to a whole block. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc((TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK);
}

/** The two zero blocks that end an archive. */
export function tarEnd(): Buffer {
  return Buffer.alloc(TAR_BLOCK * 2);
}
