import type { Readable } from 'node:stream';
import { forEachLimited } from '../concurrency.js';
import type { Logger } from '../log.js';
import type { BlobTarget, ManifestSource, PushedBlob, ResolvedBlob } from './content.js';
import { DOCKER_MANIFEST, OCI_MANIFEST, type ImageManifest } from './mediaTypes.js';
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
 * the registry has), then child manifests by digest, and only then the tags. A failure anywhere
 * before the tags leaves them where they were.
 */
export async function pushImage(options: PushOptions): Promise<PushResult> {
  const started = Date.now();
  const { client, repository, logger } = options;
  const manifests = postOrder(options.root);
  const sources = [...new Set(manifests.flatMap((manifest) => manifest.blobs))];
  const target = new RepositoryTarget(client, repository, options.tags, logger, options.progressIntervalMs ?? 5_000);
  try {
    await forEachLimited(sources, options.concurrency ?? 4, async (source) => {
      await source.push(target);
    });
  } finally {
    target.progress.stop();
  }

  // Children of an index are stored by digest; the root needs no such step, since each tag PUT
  // is itself all-or-nothing and the registry refuses a manifest whose blobs are missing.
  for (const child of manifests.slice(0, -1)) {
    const rendered = await child.render();
    await client.putManifest(repository, rendered.digest, rendered);
  }
  const root = await manifests.at(-1)!.render();
  for (const tag of options.tags) await client.putManifest(repository, tag, root);
  return {
    digest: root.digest,
    mediaType: root.mediaType,
    tags: options.tags,
    bytesUploaded: target.progress.bytes,
    blobsUploaded: target.uploaded,
    blobsSkipped: target.skipped,
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

/** The repository as blob sources see it, counting what moved and sending each digest once. */
class RepositoryTarget implements BlobTarget {
  uploaded = 0;
  skipped = 0;
  readonly progress: Progress;
  // Two sources can hold the same bytes (a layer shared by two platforms): the first one sends it.
  private readonly presence = new Map<string, Promise<boolean>>();
  private knownLayers?: Promise<Map<string, PushedBlob>>;

  constructor(
    private readonly client: RegistryClient,
    private readonly repository: string,
    private readonly tags: string[],
    private readonly logger: Logger,
    progressIntervalMs: number,
  ) {
    this.progress = new Progress(logger, progressIntervalMs);
  }

  async has(digest: string): Promise<boolean> {
    // Another source already holds these bytes and checked or sent them: nothing left to do here.
    if (this.presence.has(digest)) return true;
    const present = this.client.blobExists(this.repository, digest);
    this.presence.set(digest, present);
    if (!(await present)) return false;
    this.skipped++;
    this.logger.debug(`${digest} is already in ${this.repository}`);
    return true;
  }

  async upload(blob: ResolvedBlob): Promise<void> {
    this.progress.expect(blob.size);
    await this.client.uploadBlob(this.repository, blob, (delta) => this.progress.add(delta));
    this.uploaded++;
  }

  async uploadStream(open: () => Readable): Promise<{ digest: string; size: number }> {
    const result = await this.client.uploadStream(this.repository, open, (delta) => this.progress.add(delta));
    this.presence.set(result.digest, Promise.resolve(true));
    this.uploaded++;
    return result;
  }

  knownLayer(diffId: string): Promise<PushedBlob | undefined> {
    this.knownLayers ??= this.readKnownLayers();
    return this.knownLayers.then((layers) => layers.get(diffId));
  }

  /**
   * Pairs the layers of the image each tag points at now with its config's diff_ids. Best effort:
   * a tag that is new, an index, or unreadable just contributes nothing.
   */
  private async readKnownLayers(): Promise<Map<string, PushedBlob>> {
    const layers = new Map<string, PushedBlob>();
    for (const tag of this.tags) {
      try {
        const current = await this.client.getManifest(this.repository, tag, [DOCKER_MANIFEST, OCI_MANIFEST]);
        if (!current) continue;
        const manifest = JSON.parse(current.bytes.toString('utf8')) as Partial<ImageManifest>;
        if (!manifest.config || !manifest.layers) continue;
        const config = JSON.parse((await this.client.getSmallBlob(this.repository, manifest.config.digest)).toString('utf8')) as { rootfs?: { diff_ids?: string[] } };
        const diffIds = config.rootfs?.diff_ids ?? [];
        if (diffIds.length !== manifest.layers.length) continue;
        diffIds.forEach((diffId, index) => layers.set(diffId, manifest.layers![index]));
      } catch (error) {
        this.logger.debug(`Could not read what ${this.repository}:${tag} points at: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return layers;
  }
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
      const of = this.total > this.bytes ? ` of at least ${(this.total / MiB).toFixed(1)}` : '';
      logger.info(`Uploaded ${(this.bytes / MiB).toFixed(1)}${of} MiB so far (${(this.bytes / MiB / seconds).toFixed(1)} MiB/s)`);
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
