import { Transform } from 'node:stream';

/** A pass-through stream that shows every chunk to `observe` (to hash or count bytes in flight). */
export function tap(observe: (chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      observe(chunk);
      callback(null, chunk);
    },
  });
}

/**
 * Joins small chunks into pieces of about `size` bytes. Bytes relayed from one socket to another
 * arrive as TLS records of 16 KiB at most; writing them on one by one costs a call into the TLS
 * layer each, and that, not the cipher, is most of what relaying costs.
 */
export function coalesce(size: number): Transform {
  let held: Buffer[] = [];
  let length = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      held.push(chunk);
      length += chunk.length;
      if (length >= size) {
        const joined = Buffer.concat(held, length);
        held = [];
        length = 0;
        callback(null, joined);
        return;
      }
      callback();
    },
    flush(callback) {
      callback(null, length > 0 ? Buffer.concat(held, length) : undefined);
    },
  });
}
