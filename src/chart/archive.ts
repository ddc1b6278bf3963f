// Chart archives in memory. Charts are small (Helm caps one at 100 MiB decompressed, 5 MiB a file),
// so writing and reading whole buffers keeps packaging a pure function of the chart's content.
import { gunzipSync, gzipSync } from 'node:zlib';
import { posix } from 'node:path';
import { ContentError } from '../errors.js';
import { checksumMatches, cString, headerName, parseOctal } from '../archive/tar.js';

export interface ChartFile {
  /** Slash-separated path inside the chart (or inside the archive, for `writeTarGz`). */
  name: string;
  data: Buffer;
}

/** helm pkg/chart/loader: the largest file and the largest chart Helm will load. */
export const MAX_FILE_BYTES = 5 * 1024 * 1024;
export const MAX_CHART_BYTES = 100 * 1024 * 1024;

const BLOCK = 512;

/**
 * A gzipped ustar archive of regular files, in the order given, that depends on nothing but the
 * files: mode 0644, owner 0:0 with no user or group names, every mtime `mtimeSeconds`, no folder
 * entries (Helm writes none either), and a gzip header without a time stamp (zlib writes 0).
 */
export function writeTarGz(files: ChartFile[], mtimeSeconds: number): Buffer {
  const blocks: Buffer[] = [];
  for (const file of files) {
    const split = splitUstarName(file.name);
    if (!split) blocks.push(...paxPathRecord(file.name, mtimeSeconds));
    blocks.push(header(split ?? { name: 'pax-long-name', prefix: '' }, file.data.length, '0', mtimeSeconds), file.data, padding(file.data.length));
  }
  blocks.push(Buffer.alloc(BLOCK * 2));
  return gzipSync(Buffer.concat(blocks), { level: 9 });
}

/** The regular files of a gzipped tar, with their names as stored. Refuses what Helm refuses. */
export function readTarGz(archive: Buffer, label: string): ChartFile[] {
  let tar: Buffer;
  try {
    tar = gunzipSync(archive, { maxOutputLength: MAX_CHART_BYTES + 1024 * 1024 });
  } catch (error) {
    throw new ContentError(`${label} is not a gzipped chart archive (${(error as Error).message}).`);
  }
  const files: ChartFile[] = [];
  let offset = 0;
  let longName: string | undefined;
  while (offset + BLOCK <= tar.length) {
    const block = tar.subarray(offset, offset + BLOCK);
    if (block.every((byte) => byte === 0)) break;
    if (!checksumMatches(block)) throw new ContentError(`${label} is not a valid tar archive (bad header checksum at byte ${offset}).`);
    const size = parseOctal(block.subarray(124, 136));
    const type = String.fromCharCode(block[156]);
    const dataStart = offset + BLOCK;
    if (dataStart + size > tar.length) throw new ContentError(`${label} is truncated.`);
    const data = tar.subarray(dataStart, dataStart + size);
    if (type === 'x') longName = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data.toString('utf8'))?.[1] ?? longName;
    else if (type === 'L') longName = cString(data);
    else if (type !== 'g') {
      const name = longName ?? headerName(block);
      longName = undefined;
      if (type === '0' || type === '\0' || type === '7') files.push({ name, data: Buffer.from(data) });
    }
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;
  }
  return files;
}

/** A chart's files from its archive: the top folder (`<name>/`) stripped, as Helm's loader does. */
export function chartFilesFromArchive(archive: Buffer, label: string): ChartFile[] {
  let total = 0;
  return readTarGz(archive, label).map((file) => {
    const parts = file.name.replaceAll('\\', '/').split('/');
    const name = posix.normalize(parts.slice(1).join('/'));
    if (parts[0] === 'Chart.yaml') throw new ContentError(`${label}: Chart.yaml must sit in a folder named after the chart, not at the top of the archive.`);
    if (name === '.' || name.startsWith('..') || name.startsWith('/')) throw new ContentError(`${label} holds a path outside its chart folder: ${file.name}`);
    if (file.data.length > MAX_FILE_BYTES) throw new ContentError(`${label}: ${file.name} is larger than Helm's 5 MiB limit for a chart file.`);
    total += file.data.length;
    if (total > MAX_CHART_BYTES) throw new ContentError(`${label} is larger than Helm's 100 MiB limit for a chart, decompressed.`);
    return { name, data: file.data };
  });
}

function header(path: { name: string; prefix: string }, size: number, type: string, mtimeSeconds: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  const text = (offset: number, length: number, value: string) => block.write(value, offset, length, 'utf8');
  const octal = (offset: number, length: number, value: number) => text(offset, length, `${value.toString(8).padStart(length - 1, '0')}\0`);
  text(0, 100, path.name);
  octal(100, 8, 0o644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, mtimeSeconds);
  text(148, 8, ' '.repeat(8));
  text(156, 1, type);
  text(257, 8, 'ustar\u000000');
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
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100) return { name: rest, prefix };
  }
  return undefined;
}

/** A pax extended header carrying a path too long for ustar (POSIX.1-2001 "pax Header Block"). */
function paxPathRecord(path: string, mtimeSeconds: number): Buffer[] {
  const body = `path=${path}\n`;
  // The record's length counts its own digits.
  let length = Buffer.byteLength(body) + 2;
  while (Buffer.byteLength(`${length} ${body}`) !== length) length = Buffer.byteLength(`${length} ${body}`);
  const record = Buffer.from(`${length} ${body}`, 'utf8');
  return [header({ name: 'PaxHeader', prefix: '' }, record.length, 'x', mtimeSeconds), record, padding(record.length)];
}

function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}
