// Tar archives, read and written in one place for image inputs and charts. The reader understands
// the formats real producers write (POSIX.1-1988 ustar, POSIX.1-2001 pax, GNU): ustar name
// prefixes, GNU long names and long link names (typeflags L and K), pax `path`, `linkpath`, `size`,
// `uid`, `gid` and `mtime` records, base-256 numbers, and links. Anything it cannot vouch for is
// one ContentError line naming the archive; it never guesses past a bad header.
import { readSync } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { ContentError } from '../errors.js';

const BLOCK = 512;

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'directory' | 'other';

/** One entry as the archive describes it, with its extended headers applied. */
export interface TarEntry {
  /** The path as stored (after pax or GNU long-name records), not normalised. */
  name: string;
  type: TarEntryType;
  /** The raw typeflag character, for callers that care about the exotic ones. */
  typeflag: string;
  /** Target of a hard link (a path in the archive) or of a symbolic link (as written). */
  linkName: string;
  /** Permission and type bits of the header's mode field. */
  mode: number;
  uid: number;
  gid: number;
  /** Modification time, in seconds since the epoch (pax may give fractions). */
  mtime: number;
  /** Bytes of content that follow the header (0 for links, folders and devices). */
  size: number;
  /** Where the content starts in the archive. */
  dataOffset: number;
}

/** Random access to the archive's bytes. */
export interface TarSource {
  size: number;
  read(offset: number, length: number): Buffer;
}

export function bufferSource(buffer: Buffer): TarSource {
  return { size: buffer.length, read: (offset, length) => buffer.subarray(offset, offset + length) };
}

/** An archive in an open file: headers are read where they are, contents are left on disk. */
export function fileSource(fd: number, size: number): TarSource {
  return {
    size,
    read(offset, length) {
      const bytes = Buffer.alloc(length);
      const read = readSync(fd, bytes, 0, length, offset);
      return bytes.subarray(0, read);
    },
  };
}

// Types whose header never has content after it, whatever its size field says (the POSIX
// rationale; GNU tar and Go's archive/tar read them the same way).
const HEADER_ONLY = new Set(['1', '2', '3', '4', '5', '6']);

function entryType(typeflag: string): TarEntryType {
  switch (typeflag) {
    case '0':
    case '\0':
    case '7':
      return 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '5':
      return 'directory';
    default:
      return 'other';
  }
}

/**
 * The entries of a tar archive in order, extended headers (pax `x`, GNU `L`/`K`) folded into the
 * entry they describe; pax global headers (`g`) are skipped. An archive may end with the two zero
 * blocks or exactly at a header boundary.
 */
export function* readTarEntries(source: TarSource, label: string): Generator<TarEntry> {
  let offset = 0;
  let pax: Map<string, string> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  while (offset < source.size) {
    if (offset + BLOCK > source.size) throw new ContentError(`${label} is truncated: the tar header at byte ${offset} is cut short.`);
    const header = source.read(offset, BLOCK);
    if (isZeroBlock(header)) return;
    if (!checksumMatches(header)) throw new ContentError(`${label} is not a valid tar archive: the header at byte ${offset} fails its checksum.`);
    const field = (start: number, length: number, what: string) => parseNumber(header.subarray(start, start + length), () => new ContentError(`${label} is not a valid tar archive: the header at byte ${offset} has an invalid ${what}.`));
    const typeflag = String.fromCharCode(header[156]);
    const declaredSize = field(124, 12, 'size');
    const dataOffset = offset + BLOCK;
    let size = HEADER_ONLY.has(typeflag) ? 0 : declaredSize;
    if (pax?.has('size') && !HEADER_ONLY.has(typeflag)) size = paxNumber(pax, 'size', label);
    const end = dataOffset + size;
    if (end > source.size) throw new ContentError(`${label} is truncated: the entry at byte ${offset} runs past the end of the archive.`);
    offset = dataOffset + Math.ceil(size / BLOCK) * BLOCK;

    if (typeflag === 'x') {
      pax = new Map([...(pax ?? []), ...parsePaxRecords(source.read(dataOffset, size), label)]);
      continue;
    }
    if (typeflag === 'g') continue;
    if (typeflag === 'L' || typeflag === 'K') {
      const text = cString(source.read(dataOffset, size));
      if (typeflag === 'L') longName = text;
      else longLink = text;
      continue;
    }
    if (typeflag === 'S' || [...(pax?.keys() ?? [])].some((key) => key.startsWith('GNU.sparse.'))) {
      throw new ContentError(`${label} holds a GNU sparse file at byte ${dataOffset - BLOCK}, which is not supported; write the archive without --sparse.`);
    }

    let name = pax?.get('path') ?? longName ?? headerName(header);
    let type = entryType(typeflag);
    // Old tars mark folders with a trailing slash on a regular-file entry.
    if (typeflag === '\0' && name.endsWith('/')) type = 'directory';
    if (type === 'directory' && !name.endsWith('/')) name = `${name}/`;
    const entry: TarEntry = {
      name,
      type,
      typeflag,
      linkName: pax?.get('linkpath') ?? longLink ?? cString(header.subarray(157, 257)),
      mode: field(100, 8, 'mode'),
      uid: pax?.has('uid') ? paxNumber(pax, 'uid', label) : field(108, 8, 'uid'),
      gid: pax?.has('gid') ? paxNumber(pax, 'gid', label) : field(116, 8, 'gid'),
      mtime: pax?.has('mtime') ? paxNumber(pax, 'mtime', label) : field(136, 12, 'mtime'),
      size,
      dataOffset,
    };
    pax = undefined;
    longName = undefined;
    longLink = undefined;
    yield entry;
  }
}

/** The name fields of a header: ustar (POSIX, magic `ustar\0`) joins the prefix; GNU and v7 have none. */
function headerName(header: Buffer): string {
  const name = cString(header.subarray(0, 100));
  const posixUstar = header.subarray(257, 263).equals(USTAR_MAGIC);
  const prefix = posixUstar ? cString(header.subarray(345, 500)) : '';
  return prefix ? `${prefix}/${name}` : name;
}

/** pax extended header records, `"<length> <key>=<value>\n"` (POSIX.1-2001, pax "Extended Header"). */
function parsePaxRecords(data: Buffer, label: string): Map<string, string> {
  const records = new Map<string, string>();
  const bad = () => new ContentError(`${label} is not a valid tar archive: a pax extended header is malformed.`);
  let position = 0;
  while (position < data.length) {
    // Some writers pad the record area with NULs.
    if (data[position] === 0) break;
    const space = data.indexOf(0x20, position);
    if (space === -1) throw bad();
    const lengthText = data.subarray(position, space).toString('latin1');
    if (!/^\d+$/.test(lengthText)) throw bad();
    const length = Number(lengthText);
    const recordEnd = position + length;
    if (length <= space - position + 1 || recordEnd > data.length || data[recordEnd - 1] !== 0x0a) throw bad();
    const record = data.subarray(space + 1, recordEnd - 1).toString('utf8');
    const equals = record.indexOf('=');
    if (equals <= 0) throw bad();
    records.set(record.slice(0, equals), record.slice(equals + 1));
    position = recordEnd;
  }
  return records;
}

function paxNumber(records: Map<string, string>, key: string, label: string): number {
  const text = records.get(key)!;
  const valid = key === 'mtime' ? /^-?\d+(\.\d+)?$/ : /^\d+$/;
  if (!valid.test(text)) throw new ContentError(`${label} is not a valid tar archive: pax ${key} '${text}' is not a number.`);
  return Number(text);
}

const USTAR_MAGIC = Buffer.from('ustar\u0000', 'latin1');

function isZeroBlock(block: Buffer): boolean {
  for (const byte of block) if (byte !== 0) return false;
  return true;
}

function cString(bytes: Buffer): string {
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end === -1 ? bytes.length : end).toString('utf8');
}

/** A numeric header field: octal text padded with spaces or NULs, or GNU base-256 (high bit set). */
function parseNumber(field: Buffer, invalid: () => Error): number {
  if (field[0] & 0x80) {
    // Bit 0x40 of the first byte is the sign; no field of ours may be negative.
    if (field[0] & 0x40) throw invalid();
    let value = field[0] & 0x3f;
    for (const byte of field.subarray(1)) value = value * 256 + byte;
    if (!Number.isSafeInteger(value)) throw invalid();
    return value;
  }
  const text = field.toString('latin1').replace(/^[\0 ]+|[\0 ]+$/g, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw invalid();
  return parseInt(text, 8);
}

/** The header checksum, summed as unsigned bytes or, as some old writers did, signed ones. */
function checksumMatches(header: Buffer): boolean {
  const stored = cString(header.subarray(148, 156)).trim();
  if (!/^[0-7]+$/.test(stored)) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : header[i];
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  const expected = parseInt(stored, 8);
  return expected === unsigned || expected === signed;
}

// ---------------------------------------------------------------------------------------------
// Image inputs: an archive on disk indexed by its headers, members streamed from their offsets.

/** One regular file inside a tar archive: where its bytes start and how many there are. */
export interface TarMember {
  name: string;
  offset: number;
  size: number;
}

/**
 * Indexes a tar file by reading only its headers, so members can later be streamed straight from
 * their offsets without extracting anything. Names are normalised (`./a/../b` is `b`); symbolic
 * and hard links (docker save links repeated layers) resolve to their targets.
 */
export async function indexTar(path: string, label: string): Promise<Map<string, TarMember>> {
  const members = new Map<string, TarMember>();
  const links: { name: string; target: string }[] = [];
  const file = await openFile(path, 'r');
  try {
    const { size } = await file.stat();
    for (const entry of readTarEntries(fileSource(file.fd, size), label)) {
      const name = normalise(entry.name);
      if (entry.type === 'file') members.set(name, { name, offset: entry.dataOffset, size: entry.size });
      else if (entry.type === 'hardlink') links.push({ name, target: normalise(entry.linkName) });
      else if (entry.type === 'symlink') links.push({ name, target: normalise(posix.join(posix.dirname(name), entry.linkName)) });
    }
  } finally {
    await file.close();
  }
  for (const link of links) {
    const target = members.get(link.target);
    if (target) members.set(link.name, { ...target, name: link.name });
  }
  return members;
}

/** Reads a (small) member into memory: manifests, configs, index files. */
export async function readMember(path: string, member: Pick<TarMember, 'offset' | 'size'>): Promise<Buffer> {
  const file = await openFile(path, 'r');
  try {
    const bytes = Buffer.alloc(member.size);
    await file.read(bytes, 0, member.size, member.offset);
    return bytes;
  } finally {
    await file.close();
  }
}

function normalise(name: string): string {
  return posix.normalize(name).replace(/^(\.\/)+|^\/+/, '').replace(/\/$/, '');
}

// ---------------------------------------------------------------------------------------------
// Writing. Every field comes from the caller, so the same entries always give the same bytes.

/** What a header says about one entry. */
export interface TarHeader {
  /** Slash-separated path inside the archive (a folder's with its trailing slash). */
  name: string;
  /** Default `file`. */
  type?: Exclude<TarEntryType, 'other'>;
  /** Target of a symbolic link, or the earlier entry a hard link names. */
  linkName?: string;
  /** Bytes of content that follow (regular files only). */
  size: number;
  /** Permission bits, with set-user-id, set-group-id and sticky (07777). */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
}

export interface TarFile {
  header: TarHeader;
  data: Buffer;
}

/**
 * A ustar archive of the given entries, in the order given, ending with the two zero blocks.
 * User and group names stay empty. A path that ustar cannot hold (over 100 bytes with no split
 * into a 155-byte prefix) goes into a pax `path` record before its header, as GNU tar and Go's
 * archive/tar do.
 */
export function writeTar(files: TarFile[]): Buffer {
  const blocks: Buffer[] = [];
  for (const { header, data } of files) {
    if (data.length !== header.size) throw new Error(`tar entry ${header.name}: header size ${header.size} but ${data.length} bytes of data`);
    blocks.push(tarHeader(header), data, tarPadding(data.length));
  }
  blocks.push(TAR_END);
  return Buffer.concat(blocks);
}

const TYPEFLAGS: Record<Exclude<TarEntryType, 'other'>, string> = { file: '0', hardlink: '1', symlink: '2', directory: '5' };

/** Largest value an octal field of `length` bytes (with its terminating NUL) holds. */
function octalLimit(length: number): number {
  return 8 ** (length - 1) - 1;
}

/**
 * The header of one entry, for writers that stream the content after it. Values ustar cannot hold
 * go into a pax extended header before it (POSIX.1-2001): a long or unsplittable `path`, a
 * `linkpath` over 100 bytes or not plain ASCII, a `size`, `uid` or `gid` too large for its field.
 */
export function tarHeader(header: TarHeader): Buffer {
  const records: Buffer[] = [];
  const split = splitUstarName(header.name);
  if (!split) records.push(paxRecord('path', header.name));
  const linkName = header.linkName ?? '';
  const linkFits = Buffer.byteLength(linkName) <= 100 && /^[\x20-\x7e]*$/.test(linkName);
  if (!linkFits) records.push(paxRecord('linkpath', linkName));
  const limits = { size: octalLimit(12), uid: octalLimit(8), gid: octalLimit(8) };
  for (const key of ['size', 'uid', 'gid'] as const) if (header[key] > limits[key]) records.push(paxRecord(key, String(header[key])));
  const blocks: Buffer[] = [];
  if (records.length > 0) {
    const body = Buffer.concat(records);
    blocks.push(headerBlock({ name: 'PaxHeader', prefix: '' }, { ...header, size: body.length, uid: Math.min(header.uid, limits.uid), gid: Math.min(header.gid, limits.gid) }, 'x', ''), body, tarPadding(body.length));
  }
  const clamped = { ...header, size: Math.min(header.size, limits.size), uid: Math.min(header.uid, limits.uid), gid: Math.min(header.gid, limits.gid) };
  blocks.push(headerBlock(split ?? { name: 'pax-long-name', prefix: '' }, clamped, TYPEFLAGS[header.type ?? 'file'], linkFits ? linkName : ''));
  return blocks.length === 1 ? blocks[0] : Buffer.concat(blocks);
}

function headerBlock(path: { name: string; prefix: string }, header: TarHeader, typeflag: string, linkName: string): Buffer {
  const block = Buffer.alloc(BLOCK);
  const text = (offset: number, length: number, value: string) => block.write(value, offset, length, 'utf8');
  const octal = (offset: number, length: number, value: number) => {
    const digits = value.toString(8);
    if (digits.length > length - 1) throw new Error(`tar entry ${header.name}: ${value} does not fit a ${length}-byte header field`);
    text(offset, length, `${digits.padStart(length - 1, '0')}\0`);
  };
  text(0, 100, path.name);
  octal(100, 8, header.mode);
  octal(108, 8, header.uid);
  octal(116, 8, header.gid);
  octal(124, 12, header.size);
  octal(136, 12, header.mtime);
  text(148, 8, ' '.repeat(8));
  text(156, 1, typeflag);
  text(157, 100, linkName);
  block.write('ustar\u000000', 257, 8, 'latin1');
  text(345, 155, path.prefix);
  const checksum = block.reduce((sum, byte) => sum + byte, 0);
  text(148, 8, `${checksum.toString(8).padStart(6, '0')}\0 `);
  return block;
}

/** ustar keeps up to 100 bytes of name and 155 of prefix, split at a `/`; undefined if it cannot. */
function splitUstarName(name: string): { name: string; prefix: string } | undefined {
  if (Buffer.byteLength(name) <= 100) return { name, prefix: '' };
  for (let cut = name.indexOf('/'); cut !== -1; cut = name.indexOf('/', cut + 1)) {
    const prefix = name.slice(0, cut);
    const rest = name.slice(cut + 1);
    if (rest !== '' && Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100) return { name: rest, prefix };
  }
  return undefined;
}

/** One pax record; its length counts its own digits. */
function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (Buffer.byteLength(`${length}${body}`) !== length) length = Buffer.byteLength(`${length}${body}`);
  return Buffer.from(`${length}${body}`, 'utf8');
}

/** The two zero blocks that end an archive. */
export const TAR_END = Buffer.alloc(BLOCK * 2);

/** Zeros that round an entry's content up to whole blocks. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}
