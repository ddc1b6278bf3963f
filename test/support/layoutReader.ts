// The build core's registry reads served from OCI layouts that skopeo fetched from the test
// registry (`skopeo copy --all docker://… oci:…`): the bytes are the registry's, the core's
// reading and platform choice are exercised, and no HTTP is imitated.
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { formatImageName, type ImageName, type ImageReader } from '../../src/build/baseImage.js';
import { registryTrustArgs, type RegistryClientTrust } from '../env/environment.js';
import { runTool } from '../env/processes.js';

function repositoryKey(name: ImageName): string {
  return `${name.registry}/${name.repository}`;
}

export class SkopeoLayoutReader implements ImageReader {
  private readonly layouts = new Map<string, Promise<string>>();
  readonly blobReads: string[] = [];

  constructor(
    private readonly trust: RegistryClientTrust,
    private readonly work: string,
  ) {}

  /** Fetches the whole repository tag once (every platform) into a layout. */
  private layout(name: ImageName, reference: string): Promise<string> {
    const key = `${repositoryKey(name)}:${name.tag ?? name.digest ?? reference}`;
    let pending = this.layouts.get(key);
    if (!pending) {
      pending = (async () => {
        const dir = await mkdtemp(join(this.work, 'fetched-'));
        const source = `docker://${formatImageName(name)}`;
        await runTool('skopeo', ['copy', '--all', '--preserve-digests', '--quiet', ...registryTrustArgs.skopeoSource(this.trust), source, `oci:${dir}:fetched`]);
        return dir;
      })();
      this.layouts.set(key, pending);
    }
    return pending;
  }

  async manifest(name: ImageName, reference: string): Promise<{ mediaType: string; bytes: Buffer; digest: string } | undefined> {
    let dir: string;
    try {
      dir = await this.layout(name, reference);
    } catch {
      return undefined;
    }
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { mediaType: string; digest: string }[] };
    const entry = reference.startsWith('sha256:') ? { digest: reference, mediaType: '' } : index.manifests[0];
    const bytes = await readFile(join(dir, 'blobs', 'sha256', entry.digest.slice(7))).catch(() => undefined);
    if (!bytes) return undefined;
    const mediaType = (JSON.parse(bytes.toString('utf8')) as { mediaType?: string }).mediaType ?? entry.mediaType;
    return { mediaType, bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
  }

  async blob(name: ImageName, digest: string): Promise<Readable> {
    this.blobReads.push(digest);
    const dir = await this.layout(name, name.tag ?? name.digest ?? 'latest');
    const path = join(dir, 'blobs', 'sha256', digest.slice(7));
    await stat(path);
    return createReadStream(path);
  }
}
