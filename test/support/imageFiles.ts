// What an image is, for comparing two builders: its config, and its flattened file system as GNU
// tar (run as root, keeping numeric owners and modes) unpacks the layers in order, listed by find:
// path, type, mode, owner, group, link count, link target and the SHA-256 of every file.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
}

export interface ImageContents {
  config: { architecture: string; os: string; variant?: string; config: Record<string, unknown>; rootfs: { diff_ids: string[] }; history?: { created_by?: string; empty_layer?: boolean }[] };
  manifest: { layers: Descriptor[]; config: Descriptor };
  /** One line per path: `path type mode uid gid links target sha256`. */
  files: string[];
}

function blobPath(layout: string, digest: string): string {
  return join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

async function readBlobJson<T>(layout: string, digest: string): Promise<T> {
  return JSON.parse(await readFile(blobPath(layout, digest), 'utf8')) as T;
}

/** The image manifest for `architecture` in an OCI layout (through nested indexes). */
export async function layoutManifest(layout: string, architecture = 'amd64'): Promise<{ manifest: ImageContents['manifest']; digest: string }> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  let candidates = index.manifests;
  for (let depth = 0; depth < 4; depth++) {
    const choice = candidates.find((entry) => !entry.platform || entry.platform.architecture === architecture);
    if (!choice) throw new Error(`${layout} has no image for ${architecture}`);
    if (/index|list/.test(choice.mediaType)) {
      candidates = (await readBlobJson<{ manifests: Descriptor[] }>(layout, choice.digest)).manifests;
      continue;
    }
    return { manifest: await readBlobJson(layout, choice.digest), digest: choice.digest };
  }
  throw new Error(`${layout}: indexes nested too deep`);
}

/** Unpacks the image's layers in order and lists every path. Refuses whiteouts, which no test image here has. */
export async function imageContents(layout: string, architecture = 'amd64'): Promise<ImageContents> {
  const { manifest } = await layoutManifest(layout, architecture);
  const config = await readBlobJson<ImageContents['config']>(layout, manifest.config.digest);
  const root = await mkdtemp(join(tmpdir(), 'image-files-'));
  try {
    for (const layer of manifest.layers) {
      const { stdout } = await run('tar', ['-tf', blobPath(layout, layer.digest)], { maxBuffer: 256 * 1024 * 1024 });
      if (/(^|\/)\.wh\./m.test(stdout)) throw new Error(`layer ${layer.digest} has whiteouts; imageContents does not apply them`);
      await run('tar', ['-xf', blobPath(layout, layer.digest), '-C', root, '--numeric-owner', '--same-owner', '--same-permissions', '--keep-directory-symlink'], { maxBuffer: 64 * 1024 * 1024 });
    }
    const { stdout } = await run('find', [root, '-mindepth', '1', '-printf', '%P\\t%y\\t%m\\t%U\\t%G\\t%n\\t%l\\n'], { maxBuffer: 256 * 1024 * 1024 });
    const files: string[] = [];
    for (const line of stdout.split('\n').filter(Boolean).sort()) {
      const [path, type] = line.split('\t');
      const hash = type === 'f' ? createHash('sha256').update(await readFile(join(root, path))).digest('hex').slice(0, 16) : '';
      files.push(`${line}\t${hash}`);
    }
    return { config, manifest, files };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
