import { open } from 'node:fs/promises';
import { posix } from 'node:path';
import { ContentError } from '../errors.js';

/** One regular file inside a tar archive: where its bytes start and how many there are. */
export interface TarMember {
  name: string;
  offset: number;
  size: number;
}

const BLOCK = 512;

/**
 * Indexes a tar file by reading only its headers, so members can later be streamed straight from
 * their offsets without extracting anything. Understands ustar, GNU long names and pax paths;
 * symbolic and hard links (docker save links repeated layers) resolve to their targets.
 */
export async function indexTar(path: string, label: string): Promise<Map<string, TarMember>> {
  const members = new Map<string, TarMember>();
  const links: { name: string; target: string }[] = [];
  const file = await open(path, 'r');
  try {
    const { size: fileSize } = await file.stat();
    const header = Buffer.alloc(BLOCK);
    let offset = 0;
    let longName: string | undefined;
    let paxPath: string | undefined;
    while (offset + BLOCK <= fileSize) {
      const { bytesRead } = await file.read(header, 0, BLOCK, offset);
      if (bytesRead < BLOCK) break;
      if (header.every((byte) => byte === 0)) break;
      if (!checksumMatches(header)) throw new ContentError(`${label} is not a valid tar archive (bad header checksum at byte ${offset}).`);
      const size = parseOctal(header.subarray(124, 136));
      const type = String.fromCharCode(header[156]);
      const dataOffset = offset + BLOCK;
      if (dataOffset + size > fileSize) throw new ContentError(`${label} is truncated: member at byte ${offset} runs past the end of the file.`);
      const readData = async (): Promise<string> => {
        const data = Buffer.alloc(size);
        await file.read(data, 0, size, dataOffset);
        return data.toString('utf8');
      };
      if (type === 'L') {
        longName = (await readData()).replace(/\0+$/, '');
      } else if (type === 'x') {
        paxPath = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(await readData())?.[1];
      } else if (type !== 'g') {
        const name = normalise(paxPath ?? longName ?? headerName(header));
        if (type === '0' || type === '\0' || type === '7') members.set(name, { name, offset: dataOffset, size });
        else if (type === '1') links.push({ name, target: normalise(cString(header.subarray(157, 257))) });
        else if (type === '2') links.push({ name, target: normalise(posix.join(posix.dirname(name), cString(header.subarray(157, 257)))) });
        longName = undefined;
        paxPath = undefined;
      }
      offset = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
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
  const file = await open(path, 'r');
  try {
    const bytes = Buffer.alloc(member.size);
    await file.read(bytes, 0, member.size, member.offset);
    return bytes;
  } finally {
    await file.close();
  }
}

export function headerName(header: Buffer): string {
  const name = cString(header.subarray(0, 100));
  const prefix = header.subarray(257, 263).toString('latin1').startsWith('ustar') ? cString(header.subarray(345, 500)) : '';
  return prefix ? `${prefix}/${name}` : name;
}

function normalise(name: string): string {
  return posix.normalize(name).replace(/^(\.\/)+|^\/+/, '');
}

export function cString(bytes: Buffer): string {
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end === -1 ? bytes.length : end).toString('utf8');
}

export function parseOctal(field: Buffer): number {
  // GNU base-256 for sizes of 8 GiB and more.
  if (field[0] & 0x80) return field.subarray(1).reduce((value, byte) => value * 256 + byte, 0);
  const text = cString(field).trim();
  return text ? parseInt(text, 8) : 0;
}

export function checksumMatches(header: Buffer): boolean {
  const stored = parseOctal(header.subarray(148, 156));
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i];
  return sum === stored;
}
