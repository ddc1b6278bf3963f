// Reads a tar archive as it streams in (an image layer being downloaded and decompressed): every
// member's header, and the content of the members the caller asks for. Understands ustar, pax
// extended headers (path, linkpath, size, uid, gid) and GNU long names and link names.
import type { Readable } from 'node:stream';
import { ContentError } from '../errors.js';
import { checksumMatches, cString, headerName, parseOctal } from './tar.js';
import { TAR_BLOCK } from './tarWriter.js';

export type TarMemberType = 'file' | 'hardlink' | 'symlink' | 'directory' | 'other';

export interface TarMemberHeader {
  /** As stored, without a leading `./` or `/` and without a trailing slash. */
  path: string;
  type: TarMemberType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  linkName: string;
  /** Where the member's content starts in the (uncompressed) archive. */
  offset: number;
}

/** Receives one member's content; `end` is awaited before the next member is read. */
export interface TarContentSink {
  write(chunk: Buffer): void | Promise<void>;
  end(): void | Promise<void>;
}

/** Called for every member; return a sink to receive its content, or nothing to skip it. */
export type TarVisitor = (header: TarMemberHeader) => TarContentSink | undefined | Promise<TarContentSink | undefined>;

function memberType(flag: string): TarMemberType {
  switch (flag) {
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

function paxRecords(text: string): Map<string, string> {
  const records = new Map<string, string>();
  let offset = 0;
  while (offset < text.length) {
    const space = text.indexOf(' ', offset);
    if (space === -1) break;
    const length = Number(text.slice(offset, space));
    if (!Number.isInteger(length) || length <= 0) break;
    const record = Buffer.from(text.slice(offset)).subarray(0, length).toString('utf8');
    const body = record.slice(record.indexOf(' ') + 1).replace(/\n$/, '');
    const equals = body.indexOf('=');
    if (equals > 0) records.set(body.slice(0, equals), body.slice(equals + 1));
    offset += record.length;
  }
  return records;
}

export function normaliseMemberPath(name: string): string {
  return name.replace(/^(\.\/)+/, '').replace(/^\/+/, '').replace(/\/+$/, '');
}

/** Pulls exact byte counts out of a stream of chunks. */
class ChunkQueue {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes taken or streamed so far: the position in the archive. */
  consumed = 0;
  private readonly iterator: AsyncIterator<Buffer>;
  private done = false;

  constructor(stream: Readable) {
    this.iterator = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  private async fill(bytes: number): Promise<boolean> {
    while (this.buffered < bytes && !this.done) {
      const next = await this.iterator.next();
      if (next.done) {
        this.done = true;
        break;
      }
      const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    return this.buffered >= bytes;
  }

  /** Exactly `bytes` bytes, or undefined at the end of the stream. */
  async take(bytes: number): Promise<Buffer | undefined> {
    if (!(await this.fill(bytes))) return undefined;
    const whole = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const taken = whole.subarray(0, bytes);
    const rest = whole.subarray(bytes);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    this.consumed += bytes;
    return taken;
  }

  /** Passes `bytes` bytes to `each` as they arrive, without holding them all. */
  async stream(bytes: number, each: (chunk: Buffer) => void | Promise<void>): Promise<boolean> {
    let left = bytes;
    while (left > 0) {
      if (this.buffered === 0 && !(await this.fill(1))) return false;
      const chunk = this.chunks.shift()!;
      const used = chunk.subarray(0, left);
      if (chunk.length > left) this.chunks.unshift(chunk.subarray(left));
      this.buffered -= used.length;
      this.consumed += used.length;
      left -= used.length;
      await each(used);
    }
    return true;
  }

  async close(): Promise<void> {
    await this.iterator.return?.();
  }
}

/** Reads every member of the archive in `stream`, in order. */
export async function readTarStream(stream: Readable, label: string, visit: TarVisitor): Promise<void> {
  const queue = new ChunkQueue(stream);
  let pax = new Map<string, string>();
  let longName: string | undefined;
  let longLink: string | undefined;
  try {
    for (;;) {
      const block = await queue.take(TAR_BLOCK);
      if (!block || block.every((byte) => byte === 0)) return;
      if (!checksumMatches(block)) throw new ContentError(`${label} is not a valid tar archive (bad header checksum).`);
      const flag = String.fromCharCode(block[156]);
      let size = parseOctal(block.subarray(124, 136));
      const padded = Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;
      if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
        const data = await queue.take(padded);
        if (!data) throw new ContentError(`${label} is truncated.`);
        const text = data.subarray(0, size).toString('utf8');
        if (flag === 'x') pax = paxRecords(text);
        else if (flag === 'L') longName = cString(data.subarray(0, size));
        else if (flag === 'K') longLink = cString(data.subarray(0, size));
        continue;
      }
      if (pax.has('size')) size = Number(pax.get('size'));
      const header: TarMemberHeader = {
        path: normaliseMemberPath(pax.get('path') ?? longName ?? headerName(block)),
        type: memberType(flag),
        mode: parseOctal(block.subarray(100, 108)) & 0o7777,
        uid: pax.has('uid') ? Number(pax.get('uid')) : parseOctal(block.subarray(108, 116)),
        gid: pax.has('gid') ? Number(pax.get('gid')) : parseOctal(block.subarray(116, 124)),
        size: flag === '1' || flag === '2' || flag === '5' ? 0 : size,
        linkName: pax.get('linkpath') ?? longLink ?? cString(block.subarray(157, 257)),
        offset: queue.consumed,
      };
      pax = new Map();
      longName = undefined;
      longLink = undefined;
      const contentBytes = Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;
      const sink = header.type === 'file' ? await visit(header) : (await visit(header), undefined);
      let complete: boolean;
      if (sink) {
        complete = await queue.stream(size, (chunk) => sink.write(chunk));
        await sink.end();
        complete = complete && (await queue.stream(contentBytes - size, () => undefined));
      } else {
        complete = await queue.stream(contentBytes, () => undefined);
      }
      if (!complete) throw new ContentError(`${label} is truncated.`);
    }
  } finally {
    await queue.close();
  }
}
