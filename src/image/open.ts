import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { ContentError, InputError } from '../errors.js';
import { loadDockerArchive } from './dockerArchive.js';
import { folderFiles, loadLayout, tarFiles } from './layout.js';
import type { ManifestSource } from '../oci/content.js';
import { indexTar } from '../archive/tar.js';
import { isGzip } from '../archive/gzip.js';

export interface OpenImageOptions {
  /** Where .tar.gz inputs are unpacked; a private folder is made inside. */
  tempDir: string;
  /** Input name used in error messages. Default 'imagePath'. */
  input?: string;
}

/**
 * zlib level for docker save layers that arrive uncompressed: on real image files level 1 is about
 * twice as fast as the default 6 for about 6% more bytes, and compression, not the network, bounds
 * how fast such a tarball goes up.
 */
const COMPRESSION_LEVEL = 1;

export interface ImageSource {
  /** What the tags will point at: an image manifest, or an index of several. */
  root: ManifestSource;
  /** Human-readable kind of input, for the log. */
  format: string;
  /** Removes temporary files. */
  close(): Promise<void>;
}

/**
 * Opens what a build left behind: an OCI image layout folder, a `docker save` tarball (old or
 * Docker 25+ layout) or an OCI archive, each optionally gzip-compressed.
 */
export async function openImage(path: string, options: OpenImageOptions): Promise<ImageSource> {
  const input = options.input ?? 'imagePath';
  const info = await stat(path).catch(() => undefined);
  if (!info) {
    throw new InputError(input, `${path} does not exist; point it at an OCI image layout folder, a docker save tarball or an OCI archive.`);
  }
  // Every error about what the input holds starts with this, and then names the file.
  const label = `${input} ${path}`;
  if (info.isDirectory()) return { root: await loadLayout(folderFiles(path, label), input), format: 'OCI image layout', close: () => Promise.resolve() };
  if (!info.isFile()) throw new InputError(input, `${path} is neither a folder nor a file.`);

  // Only a .tar.gz needs scratch space: it is unpacked once so members can be read by offset.
  let workDir: string | undefined;
  const close = async () => {
    if (workDir) await rm(workDir, { recursive: true, force: true });
  };
  try {
    let tarPath = path;
    if (await isGzip(path)) {
      workDir = await mkdtemp(join(options.tempDir, 'push-image-'));
      tarPath = join(workDir, 'image.tar');
      await pipeline(createReadStream(path), createGunzip(), createWriteStream(tarPath, { mode: 0o600 })).catch((error: Error) => {
        throw new ContentError(`${label} is not a valid gzip file (${error.message}).`);
      });
    }
    const members = await indexTar(tarPath, label);
    let root: ManifestSource;
    let format: string;
    if (members.has('manifest.json')) {
      root = await loadDockerArchive(tarPath, label, members, { compressionLevel: COMPRESSION_LEVEL, input, path });
      format = 'docker save tarball';
    } else if (members.has('oci-layout')) {
      root = await loadLayout(tarFiles(tarPath, label, members, path), input);
      format = 'OCI archive';
    } else {
      throw new InputError(input, `${path} is a tar archive but not an image: it has neither manifest.json (docker save) nor oci-layout (OCI archive).`);
    }
    return { root, format, close };
  } catch (error) {
    await close();
    throw error;
  }
}
