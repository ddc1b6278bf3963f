// Shape checks for the JSON files of an image input (image-spec image-layout.md, manifest.md,
// image-index.md, descriptor.md; docker save's manifest.json and image config). Whatever a file
// holds, reading it gives either the typed value or one ContentError that names the input, the file
// and the field — never a TypeError from deeper down.
import { ContentError } from '../errors.js';
import type { Descriptor } from '../oci/mediaTypes.js';

const SHA256 = /^sha256:[a-f0-9]{64}$/;
// An algorithm and an encoded hash (image-spec descriptor.md "Digests").
const ANY_DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
/** JSON files of an image are read into memory; none is anywhere near this large. */
export const MAX_JSON_BYTES = 16 * 1024 * 1024;

/** One JSON file of an image input, named in every error as `imagePath <path>: <file>`. */
export class ImageJson {
  constructor(
    /** `imagePath /work/image.tar` */
    readonly label: string,
    /** The file inside the input: `index.json`, `blobs/sha256/…`, `manifest.json`. */
    readonly file: string,
  ) {}

  error(where: string, problem: string): ContentError {
    return new ContentError(`${this.label}: ${this.file}${where ? ` ${where}` : ''} ${problem}; the image is corrupt or was not written by an image tool.`);
  }

  parse(bytes: Buffer): unknown {
    try {
      return JSON.parse(bytes.toString('utf8')) as unknown;
    } catch (error) {
      throw this.error('', `is not valid JSON (${(error as Error).message})`);
    }
  }

  object(value: unknown, where: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw this.error(where, `must be a JSON object, not ${describe(value)}`);
    return value as Record<string, unknown>;
  }

  array(value: unknown, where: string): unknown[] {
    if (!Array.isArray(value)) throw this.error(where, `must be a list, not ${describe(value)}`);
    return value;
  }

  string(value: unknown, where: string): string {
    if (typeof value !== 'string' || value === '') throw this.error(where, `must be a non-empty string, not ${describe(value)}`);
    return value;
  }

  optionalString(value: unknown, where: string): string | undefined {
    return value === undefined ? undefined : this.string(value, where);
  }

  /** A sha256 digest: the only algorithm registries are required to accept. */
  digest(value: unknown, where: string): string {
    const text = this.string(value, where);
    if (SHA256.test(text)) return text;
    if (!text.startsWith('sha256:') && ANY_DIGEST.test(text)) throw this.error(where, `is ${text}, a digest algorithm this task does not support (only sha256)`);
    throw this.error(where, `must be a digest (sha256: and 64 hex digits), not ${describe(value)}`);
  }

  size(value: unknown, where: string): number {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw this.error(where, `must be a size in bytes (a whole number, 0 or more), not ${describe(value)}`);
    return value;
  }

  /** A content descriptor; only the fields the push reads or forwards are checked. */
  descriptor(value: unknown, where: string): Descriptor {
    const object = this.object(value, where);
    const descriptor: Descriptor = {
      mediaType: this.string(object.mediaType, `${where}.mediaType`),
      digest: this.digest(object.digest, `${where}.digest`),
      size: this.size(object.size, `${where}.size`),
    };
    if (object.urls !== undefined) descriptor.urls = this.array(object.urls, `${where}.urls`).map((url, index) => this.string(url, `${where}.urls[${index}]`));
    if (object.annotations !== undefined) descriptor.annotations = this.stringMap(object.annotations, `${where}.annotations`);
    return descriptor;
  }

  stringMap(value: unknown, where: string): Record<string, string> {
    const object = this.object(value, where);
    for (const [key, item] of Object.entries(object)) if (typeof item !== 'string') throw this.error(`${where}.${key}`, `must be a string, not ${describe(item)}`);
    return object as Record<string, string>;
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  const text = JSON.stringify(value);
  return `${typeof value} ${text.length > 40 ? `${text.slice(0, 40)}…` : text}`;
}
