import type { Readable } from 'node:stream';
import { forEachLimited } from '../concurrency.js';
import { UserError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { BlobTarget, ManifestSource, PushedBlob, RenderedManifest, ResolvedBlob } from './content.js';
import { isManifestMediaType, type ImageManifest } from './mediaTypes.js';
import type { RegistryClient, RegistryRepository, StoredManifest } from './registry.js';

export interface PushOptions {
  client: RegistryClient;
  repository: string;
  root: ManifestSource;
  /** Tags moved to the pushed manifest, all or none, after everything else is in the registry. */
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
  /** Blobs mounted from another repository of the registry instead of uploaded. */
  blobsMounted: number;
  durationMs: number;
}

/**
 * Pushes an image so that nothing points at missing content: every blob first (skipping those
 * the registry has), then child manifests by digest, and only then the tags, all or none. A
 * failure anywhere leaves every tag where it was.
 */
export async function pushImage(options: PushOptions): Promise<PushResult> {
  const started = Date.now();
  const { logger } = options;
  const repository = options.client.repository(options.repository, 'push');
  const manifests = postOrder(options.root);
  const sources = [...new Set(manifests.flatMap((manifest) => manifest.blobs))];
  const target = new RepositoryTarget(repository, options.tags, logger, options.progressIntervalMs ?? 5_000);
  try {
    await forEachLimited(sources, options.concurrency ?? 4, async (source) => {
      await source.push(target);
    });
  } finally {
    target.progress.stop();
  }

  // Children of an index are stored by digest; the root needs no such step, since each tag PUT
  // stores it whole and the registry refuses a manifest whose blobs are missing.
  for (const child of manifests.slice(0, -1)) {
    const rendered = await child.render();
    await repository.putManifest(rendered.digest, rendered);
  }
  const root = await manifests.at(-1)!.render();
  await moveTags(repository, options.tags, root, logger);
  return {
    digest: root.digest,
    mediaType: root.mediaType,
    tags: options.tags,
    bytesUploaded: target.progress.bytes,
    blobsUploaded: target.uploaded,
    blobsSkipped: target.skipped,
    blobsMounted: target.mounted,
    durationMs: Date.now() - started,
  };
}

/**
 * Points every tag at `root`, all or none. What each tag points at before is read first; when a
 * registry refuses a tag (ACR's locked tags, a scope map without that tag), the tags already moved
 * are put back, and a tag that did not exist before is removed where the registry allows it.
 */
export async function moveTags(repository: RegistryRepository, tags: string[], root: RenderedManifest, logger: Logger): Promise<void> {
  // One tag is one PUT, which the registry applies whole or not at all.
  if (tags.length === 1) {
    await repository.putManifest(tags[0], root);
    return;
  }
  const before = new Map<string, StoredManifest | undefined>();
  await Promise.all(tags.map(async (tag) => before.set(tag, await repository.getManifest(tag))));
  const changing = tags.filter((tag) => before.get(tag)?.digest !== root.digest);
  // Tags that exist go first: putting one back takes the same right as moving it, removing a new one may not.
  const ordered = [...changing.filter((tag) => before.get(tag)), ...changing.filter((tag) => !before.get(tag))];
  const moved: string[] = [];
  try {
    for (const tag of ordered) {
      await repository.putManifest(tag, root);
      moved.push(tag);
    }
  } catch (error) {
    if (moved.length === 0) throw error;
    const outcomes: string[] = [];
    for (const tag of moved.reverse()) outcomes.push(await putBack(repository, tag, before.get(tag), root.digest, logger));
    throw new UserError(`${errorMessage(error).replace(/\.?$/, '.')} Tags already moved: ${outcomes.join('; ')}.`, { cause: error });
  }
}

/** Undoes one tag move; says what became of the tag. */
async function putBack(repository: RegistryRepository, tag: string, previous: StoredManifest | undefined, digest: string, logger: Logger): Promise<string> {
  try {
    if (previous) {
      await repository.putManifest(tag, previous);
      logger.warn(`Put tag ${tag} back on ${previous.digest}, where it was before this push`);
      return `${tag} put back on ${previous.digest}`;
    }
    await repository.deleteTag(tag);
    logger.warn(`Removed tag ${tag}, which did not exist before this push`);
    return `${tag} removed again`;
  } catch (error) {
    const what = previous
      ? `${tag} could not be put back on ${previous.digest} and points at ${digest} (${errorMessage(error)})`
      : `${tag} did not exist before and could not be removed, so it points at ${digest}: remove it by hand, e.g. az acr repository untag (${errorMessage(error)})`;
    logger.warn(`Tag ${what}`);
    return what;
  }
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
  mounted = 0;
  readonly progress: Progress;
  // Two sources can hold the same bytes (a layer shared by two platforms): the first one sends it.
  private readonly presence = new Map<string, Promise<boolean>>();
  private knownLayers?: Promise<Map<string, PushedBlob>>;

  constructor(
    private readonly repository: RegistryRepository,
    private readonly tags: string[],
    private readonly logger: Logger,
    progressIntervalMs: number,
  ) {
    this.progress = new Progress(logger, progressIntervalMs);
  }

  async has(digest: string): Promise<boolean> {
    // Another source already holds these bytes and checked or sent them: nothing left to do here.
    if (this.presence.has(digest)) return true;
    const present = this.repository.blobExists(digest);
    this.presence.set(digest, present);
    if (!(await present)) return false;
    this.skipped++;
    this.logger.debug(`${digest} is already in ${this.repository.name}`);
    return true;
  }

  async upload(blob: ResolvedBlob): Promise<void> {
    this.progress.expect(blob.size);
    await this.repository.uploadBlob(blob, (delta) => this.progress.add(delta));
    this.uploaded++;
  }

  async uploadStream(open: () => Readable): Promise<{ digest: string; size: number }> {
    const result = await this.repository.uploadStream(open, (delta) => this.progress.add(delta));
    this.presence.set(result.digest, Promise.resolve(true));
    this.uploaded++;
    return result;
  }

  knownLayer(diffId: string): Promise<PushedBlob | undefined> {
    this.knownLayers ??= readTaggedLayers(this.repository, this.tags, this.logger);
    return this.knownLayers.then((layers) => layers.get(diffId));
  }

  async mount(digest: string, from: string): Promise<boolean> {
    const mounted = await this.repository.mountBlob(digest, from);
    if (mounted) {
      this.presence.set(digest, Promise.resolve(true));
      this.mounted++;
      this.logger.debug(`${digest} mounted into ${this.repository.name} from ${from}`);
    }
    return mounted;
  }
}

/**
 * The compressed layers of the images the tags point at now, by their config's diff_ids: what a
 * re-push (or a rebuild) needs neither compress nor upload again. Best effort: a tag that is new,
 * an index, or unreadable just contributes nothing.
 */
export async function readTaggedLayers(repository: RegistryRepository, tags: string[], logger: Logger): Promise<Map<string, PushedBlob>> {
  const layers = new Map<string, PushedBlob>();
  for (const tag of tags) {
    try {
      const current = await repository.getManifest(tag);
      if (!current || !isManifestMediaType(current.mediaType)) continue;
      const manifest = JSON.parse(current.bytes.toString('utf8')) as Partial<ImageManifest>;
      if (!manifest.config || !Array.isArray(manifest.layers)) continue;
      const config = JSON.parse((await repository.readBlob(manifest.config.digest, MAX_CONFIG_BYTES)).toString('utf8')) as { rootfs?: { diff_ids?: unknown } };
      const diffIds = config.rootfs?.diff_ids;
      if (!Array.isArray(diffIds) || diffIds.length !== manifest.layers.length) continue;
      diffIds.forEach((diffId, index) => {
        if (typeof diffId === 'string') layers.set(diffId, manifest.layers![index]);
      });
    } catch (error) {
      logger.debug(`Could not read what ${repository.name}:${tag} points at: ${errorMessage(error)}`);
    }
  }
  return layers;
}

const MiB = 1024 * 1024;
// Image configs are read into memory; a long history makes them large, but never this large.
const MAX_CONFIG_BYTES = 16 * MiB;

/** Logs bytes sent at most once per interval, so long uploads show they are alive. */
export class Progress {
  bytes = 0;
  private total = 0;
  private readonly timer: NodeJS.Timeout;
  private lastReported = 0;
  private readonly started = Date.now();

  constructor(logger: Logger, intervalMs: number, verb = 'Uploaded') {
    this.timer = setInterval(() => {
      if (this.bytes === this.lastReported) return;
      this.lastReported = this.bytes;
      const seconds = (Date.now() - this.started) / 1000;
      const of = this.total > this.bytes ? ` of at least ${(this.total / MiB).toFixed(1)}` : '';
      logger.info(`${verb} ${(this.bytes / MiB).toFixed(1)}${of} MiB so far (${(this.bytes / MiB / seconds).toFixed(1)} MiB/s)`);
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
