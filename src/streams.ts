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
