// Images on disk for Trivy's `--input`, which opens docker save tarballs (gzip too) and OCI image
// layout folders but not OCI archives: those are unpacked into the run's private folder first.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { indexTar } from '../archive/tar.js';
import { isGzip } from '../archive/gzip.js';
import { ContentError, InputError } from '../errors.js';

/** The path to hand Trivy, and what the user gave, for the log. */
export interface PreparedImageFile {
  path: string;
  format: string;
}

export async function prepareImageFile(path: string, scratch: string, input = 'imagePath'): Promise<PreparedImageFile> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new InputError(input, `${path} does not exist; point it at an OCI image layout folder, a docker save tarball or an OCI archive (for example the build step's outputPath).`);
  if (info.isDirectory()) {
    const marker = await stat(join(path, 'oci-layout')).catch(() => undefined);
    if (!marker) throw new InputError(input, `${path} is a folder but not an OCI image layout (it has no oci-layout file).`);
    return { path, format: 'OCI image layout' };
  }
  if (!info.isFile()) throw new InputError(input, `${path} is neither a folder nor a file.`);
  let tarPath = path;
  if (await isGzip(path)) {
    tarPath = join(scratch, 'image.tar');
    await pipeline(createReadStream(path), createGunzip(), createWriteStream(tarPath, { mode: 0o600 })).catch((error: Error) => {
      throw new ContentError(`${input} ${path} is not a valid gzip file (${error.message}).`);
    });
  }
  const members = await indexTar(tarPath, `${input} ${path}`);
  if (members.has('manifest.json')) return { path: tarPath, format: 'docker save tarball' };
  if (!members.has('oci-layout')) {
    throw new InputError(input, `${path} is a tar archive but not an image: it has neither manifest.json (docker save) nor oci-layout (OCI archive).`);
  }
  const layout = join(scratch, 'layout');
  for (const member of members.values()) {
    const target = join(layout, member.name);
    if (!target.startsWith(`${layout}/`)) throw new ContentError(`${input} ${path} holds a member outside the archive (${member.name}).`);
    await mkdir(dirname(target), { recursive: true });
    if (member.size === 0) {
      await (await open(target, 'w', 0o600)).close();
      continue;
    }
    await pipeline(createReadStream(tarPath, { start: member.offset, end: member.offset + member.size - 1 }), createWriteStream(target, { mode: 0o600 }));
  }
  return { path: layout, format: 'OCI archive' };
}
