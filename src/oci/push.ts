import { forEachLimited } from '../concurrency.js';
import type { Logger } from '../log.js';
import type { BlobSource, ManifestSource, RenderedManifest, ResolvedBlob } from '../image/model.js';
import type { RegistryClient } from './registry.js';

export interface PushOptions {
  client: RegistryClient;
  repository: string;
  root: ManifestSource;
  /** Tags moved to the pushed manifest, in order, after everything else is in the registry. */
  tags: string[];
  /** Blobs in flight at once (HEAD, compress, upload). Default 4, as go-containerregistry. */
  concurrency?: number;
  logger: Logger;
  /** How often a long upload reports progress. Default 5 s. */
  progressIntervalMs?: number;
}

export interface PushResult {
  digest: string;
  mediaType: string;
  tags: string[];
  bytesUploaded: number;
  blobsUploaded: number;
  blobsSkipped: number;
  durationMs: number;
}

/**
 * Pushes an image so that nothing points at missing content: every blob first (skipping those
 * the registry has), then child manifests by digest, then the root by digest, and only then the
 * tags. A failure anywhere leaves the tags where they were.
 */
export async function pushImage(options: PushOptions): Promise<PushResult> {
  const started = Date.now();
  const { client, repository, logger } = options;
  const manifests = postOrder(options.root);
  const blobs = [...new Set(manifests.flatMap((manifest) => manifest.blobs))];
  const progress = new Progress(logger, options.progressIntervalMs ?? 5_000);
  const seen = new Set<string>();
  let blobsUploaded = 0;
  let blobsSkipped = 0;

  try {
    await forEachLimited(blobs, options.concurrency ?? 4, async (source: BlobSource) => {
      const blob: ResolvedBlob = await source.resolve();
      // Two sources can resolve to the same bytes (a layer shared by two platforms): send it once.
      if (seen.has(blob.digest)) return;
      seen.add(blob.digest);
      if (await client.blobExists(repository, blob.digest)) {
        blobsSkipped++;
        logger.debug(`${blob.digest} is already in ${repository}`);
        return;
      }
      progress.expect(blob.size);
      await client.uploadBlob(repository, blob, (delta) => progress.add(delta));
      blobsUploaded++;
    });
  } finally {
    progress.stop();
  }

  let root: RenderedManifest | undefined;
  for (const manifest of manifests) {
    root = await manifest.render();
    await client.putManifest(repository, root.digest, root);
  }
  for (const tag of options.tags) await client.putManifest(repository, tag, root!);
  return {
    digest: root!.digest,
    mediaType: root!.mediaType,
    tags: options.tags,
    bytesUploaded: progress.bytes,
    blobsUploaded,
    blobsSkipped,
    durationMs: Date.now() - started,
  };
}

/** Children before parents, the root last: the order manifests must reach the registry in. */
function postOrder(root: ManifestSource): ManifestSource[] {
  const ordered: ManifestSource[] = [];
  const visit = (node: ManifestSource) => {
    node.children.forEach(visit);
    if (!ordered.includes(node)) ordered.push(node);
  };
  visit(root);
  return ordered;
}

const MiB = 1024 * 1024;

/** Logs bytes sent at most once per interval, so long uploads show they are alive. */
class Progress {
  bytes = 0;
  private total = 0;
  private readonly timer: NodeJS.Timeout;
  private lastReported = 0;
  private readonly started = Date.now();

  constructor(logger: Logger, intervalMs: number) {
    this.timer = setInterval(() => {
      if (this.bytes === this.lastReported) return;
      this.lastReported = this.bytes;
      const seconds = (Date.now() - this.started) / 1000;
      logger.info(`Uploaded ${(this.bytes / MiB).toFixed(1)} of ${(this.total / MiB).toFixed(1)} MiB so far (${(this.bytes / MiB / seconds).toFixed(1)} MiB/s)`);
    }, intervalMs);
    this.timer.unref();
  }

  expect(bytes: number): void {
    this.total += bytes;
  }

  add(delta: number): void {
    this.bytes += delta;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
