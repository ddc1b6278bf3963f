// Registry-to-registry copy, as `skopeo copy --all` and `crane copy` do it, on the product's one
// client: manifests and indexes go across byte for byte (so every digest stays the same), blobs
// stream from one registry to the other without touching the disk, and what the target already
// has is skipped (or, within one registry, mounted from the source repository). Referrers —
// signatures, SBOMs, attestations — come along, found through the OCI 1.1 referrers API or the
// `sha256-<hex>` tag schema of registries without it (distribution 2.8). Tags move last, all or none.
import { forEachLimited } from '../concurrency.js';
import { ContentError, InputError, UserError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { coalesce } from '../streams.js';
import { renderJson, type BlobContent } from './content.js';
import { OCI_INDEX, isIndexMediaType, isManifestMediaType, type Descriptor, type ImageIndex, type ImageManifest } from './mediaTypes.js';
import { Progress, moveTags } from './push.js';
import type { RegistryClient, RegistryRepository, StoredManifest } from './registry.js';

/** An OCI platform (image-spec image-index.md): `linux/amd64`, `linux/arm64/v8`. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface CopyOptions {
  /** Where from: a tag or a digest in a repository the source client can read. */
  source: { client: RegistryClient; repository: string; reference: string };
  /** Where to: tags moved to the copy last, all or none; with none the copy is reachable by digest only. */
  target: { client: RegistryClient; repository: string; tags: string[] };
  /**
   * Platforms of a multi-platform index to keep. Default: all, and the index is copied as it is;
   * with fewer, a new index listing only those is made (a different digest). A single-platform
   * image or an artifact is copied as it is either way.
   */
  platforms?: Platform[];
  /** Copy the manifests that refer to what is copied (signatures, SBOMs) too. Default true. */
  referrers?: boolean;
  /** Blobs in flight at once. Default 4, as go-containerregistry. */
  concurrency?: number;
  logger: Logger;
  /** How often a long copy reports progress. Default 5 s. */
  progressIntervalMs?: number;
}

export interface CopyResult {
  /** What the target's tags point at. */
  digest: string;
  mediaType: string;
  /** What the source reference pointed at; differs from `digest` only when platforms narrowed an index. */
  sourceDigest: string;
  /** The platforms kept when an index was narrowed. */
  narrowedTo?: string[];
  manifests: number;
  blobsCopied: number;
  blobsMounted: number;
  blobsSkipped: number;
  bytesCopied: number;
  /** Digests of the referrers copied along. */
  referrers: string[];
  durationMs: number;
}

export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

/** `linux/amd64, linux/arm64/v8` (commas, spaces or lines) → platforms. */
export function parsePlatforms(value: string, input: string): Platform[] {
  return value
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((text) => {
      const [os, architecture, variant, ...rest] = text.split('/');
      if (!os || !architecture || rest.length > 0 || !/^[a-z0-9._-]+$/.test(text.replace(/\//g, ''))) {
        throw new InputError(input, `'${text}' is not a platform; write os/architecture[/variant], for example linux/amd64 or linux/arm64/v8.`);
      }
      return { os, architecture, variant: variant || undefined };
    });
}

/** A manifest of the tree being copied, with the blobs it names and the manifests an index lists. */
interface Node {
  stored: StoredManifest;
  children: Node[];
  blobs: Descriptor[];
}

// Manifests of a copy are read into memory, an index's children a few at a time.
const MANIFEST_READS = 8;

export async function copyImage(options: CopyOptions): Promise<CopyResult> {
  const started = Date.now();
  const { logger } = options;
  const source = options.source.client.repository(options.source.repository);
  const target = options.target.client.repository(options.target.repository, 'push');
  const named = `${options.source.client.host}/${options.source.repository}${options.source.reference.startsWith('sha256:') ? '@' : ':'}${options.source.reference}`;

  const original = await source.getManifest(options.source.reference);
  if (!original) throw new UserError(`${named} does not exist (MANIFEST_UNKNOWN): check the repository and the tag or digest, and that the source connection may read it.`);
  if (options.source.reference.startsWith('sha256:') && original.digest !== options.source.reference) {
    throw new ContentError(`${named} answered with a manifest whose digest is ${original.digest}: the source registry served other content than asked for.`);
  }
  const root = await readTree(source, withMediaType(original), options.platforms, logger);
  let narrowedTo: string[] | undefined;
  if (root.narrowed) {
    narrowedTo = root.narrowed;
    logger.info(`Keeping ${narrowedTo.join(', ')} of ${named}: a new index ${root.node.stored.digest} lists them (the source index is ${original.digest})`);
  }

  const copier = new BlobCopier(source, target, options, logger);
  try {
    await copier.copy(blobsOf(root.node));
    await putManifests(target, root.node);
    const copiedReferrers = options.referrers === false ? [] : await copyReferrers(source, target, root.node, original.digest, copier, logger);
    // Tags that point at the copy already are left alone: a repeated import writes nothing.
    const current = await Promise.all(options.target.tags.map(async (tag) => ({ tag, digest: await target.manifestDigest(tag) })));
    await moveTags(target, current.filter(({ digest }) => digest !== root.node.stored.digest).map(({ tag }) => tag), root.node.stored, logger);
    return {
      digest: root.node.stored.digest,
      mediaType: root.node.stored.mediaType,
      sourceDigest: original.digest,
      narrowedTo,
      manifests: countManifests(root.node),
      blobsCopied: copier.copied,
      blobsMounted: copier.mounted,
      blobsSkipped: copier.skipped,
      bytesCopied: copier.progress.bytes,
      referrers: copiedReferrers,
      durationMs: Date.now() - started,
    };
  } finally {
    copier.progress.stop();
  }
}

/** Some registries answer a manifest GET with a generic content type; the manifest's own mediaType then says what it is. */
function withMediaType(stored: StoredManifest): StoredManifest {
  if (isIndexMediaType(stored.mediaType) || isManifestMediaType(stored.mediaType)) return stored;
  const declared = parseManifest(stored).mediaType;
  return typeof declared === 'string' && declared ? { ...stored, mediaType: declared } : stored;
}

function parseManifest(stored: StoredManifest): Partial<ImageManifest & ImageIndex> {
  try {
    const parsed = JSON.parse(stored.bytes.toString('utf8')) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed;
  } catch {
    // Reported below.
  }
  throw new ContentError(`Manifest ${stored.digest} is not a JSON object; the source registry serves something other than an image.`);
}

function isIndex(stored: StoredManifest, parsed: Partial<ImageIndex>): boolean {
  return isIndexMediaType(stored.mediaType) || (!isManifestMediaType(stored.mediaType) && Array.isArray(parsed.manifests));
}

/** Reads a manifest and, for an index, every manifest it lists; narrows the top index to `platforms`. */
async function readTree(source: RegistryRepository, stored: StoredManifest, platforms: Platform[] | undefined, logger: Logger): Promise<{ node: Node; narrowed?: string[] }> {
  const parsed = parseManifest(stored);
  if (!isIndex(stored, parsed)) return { node: manifestNode(stored, parsed) };
  const listed = parsed.manifests ?? [];
  const kept = platforms ? keepPlatforms(listed, platforms, stored.digest) : listed;
  const narrowed = kept.length < listed.length;
  const rendered = narrowed ? renderJson({ ...parsed, manifests: kept }, stored.mediaType) : stored;
  const children: Node[] = [];
  await forEachLimited(kept.map((descriptor, index) => ({ descriptor, index })), MANIFEST_READS, async ({ descriptor, index }) => {
    const child = await source.getManifest(descriptor.digest);
    if (!child) throw new ContentError(`Index ${stored.digest} lists ${descriptor.digest}, which the source registry does not have (MANIFEST_UNKNOWN).`);
    children[index] = (await readTree(source, withMediaType({ ...child, mediaType: child.mediaType || descriptor.mediaType }), undefined, logger)).node;
  });
  const platformsKept = kept.filter((entry) => entry.platform && entry.platform.os !== 'unknown').map((entry) => formatPlatform(entry.platform!));
  return { node: { stored: rendered, children, blobs: [] }, narrowed: narrowed ? platformsKept : undefined };
}

function manifestNode(stored: StoredManifest, parsed: Partial<ImageManifest>): Node {
  if (!parsed.config?.digest) throw new ContentError(`Manifest ${stored.digest} (${stored.mediaType}) names no config; it is neither an image nor an artifact manifest this task can copy.`);
  // Foreign layers (image-spec `urls`, Windows base layers) live outside registries: not copied, as skopeo does.
  const blobs = [parsed.config, ...(parsed.layers ?? [])].filter((blob) => !blob.urls?.length);
  return { stored, children: [], blobs };
}

/**
 * The entries of an index for the wanted platforms, and the attestation manifests BuildKit lists
 * beside them (platform unknown/unknown, annotation `vnd.docker.reference.digest`) for those kept.
 */
function keepPlatforms(listed: Descriptor[], platforms: Platform[], digest: string): Descriptor[] {
  const wanted = (platform: Descriptor['platform']) =>
    platform !== undefined && platforms.some((want) => want.os === platform.os && want.architecture === platform.architecture && (!want.variant || want.variant === platform.variant));
  const images = listed.filter((entry) => wanted(entry.platform));
  if (images.length === 0) {
    const offered = listed.filter((entry) => entry.platform && entry.platform.os !== 'unknown').map((entry) => formatPlatform(entry.platform!));
    throw new InputError('platforms', `the index ${digest} has none of ${platforms.map(formatPlatform).join(', ')}; it has ${offered.join(', ') || 'no platforms listed'}.`);
  }
  const keptDigests = new Set(images.map((entry) => entry.digest));
  return listed.filter((entry) => keptDigests.has(entry.digest) || keptDigests.has(entry.annotations?.['vnd.docker.reference.digest'] ?? ''));
}

function blobsOf(node: Node): Descriptor[] {
  const all = new Map<string, Descriptor>();
  const visit = (current: Node) => {
    for (const blob of current.blobs) all.set(blob.digest, blob);
    current.children.forEach(visit);
  };
  visit(node);
  return [...all.values()];
}

function countManifests(node: Node): number {
  return 1 + node.children.reduce((sum, child) => sum + countManifests(child), 0);
}

/** Children by digest before the index that lists them; the root by digest too (tags come last). Manifests the target has are not sent again. */
async function putManifests(target: RegistryRepository, node: Node): Promise<void> {
  for (const child of node.children) await putManifests(target, child);
  if ((await target.manifestDigest(node.stored.digest)) === undefined) await target.putManifest(node.stored.digest, node.stored);
}

/** Moves blobs: skipped when the target has them, mounted within one registry, else streamed across. */
class BlobCopier {
  copied = 0;
  mounted = 0;
  skipped = 0;
  readonly progress: Progress;
  private readonly done = new Set<string>();
  private readonly sameRegistry: boolean;

  constructor(
    private readonly source: RegistryRepository,
    private readonly target: RegistryRepository,
    private readonly options: CopyOptions,
    private readonly logger: Logger,
  ) {
    this.progress = new Progress(logger, options.progressIntervalMs ?? 5_000, 'Copied');
    this.sameRegistry = options.source.client.host === options.target.client.host;
  }

  async copy(blobs: Descriptor[]): Promise<void> {
    const todo = blobs.filter((blob) => !this.done.has(blob.digest));
    await forEachLimited(todo, this.options.concurrency ?? 4, async (blob) => {
      this.done.add(blob.digest);
      if (await this.target.blobExists(blob.digest)) {
        this.skipped++;
        this.logger.debug(`${blob.digest} is already in ${this.target.name}`);
        return;
      }
      if (this.sameRegistry && this.source.name !== this.target.name && (await this.mount(blob))) return;
      this.progress.expect(blob.size);
      await this.target.uploadBlob(remoteBlob(this.source, blob), (delta) => this.progress.add(delta));
      this.copied++;
    });
  }

  private async mount(blob: Descriptor): Promise<boolean> {
    try {
      if (!(await this.target.mountBlob(blob.digest, this.source.name))) return false;
      this.mounted++;
      this.logger.debug(`Mounted ${blob.digest} from ${this.source.name}`);
      return true;
    } catch (error) {
      // A mount the registry refuses is only a slower path lost: the bytes can still be copied.
      this.logger.debug(`Could not mount ${blob.digest} from ${this.source.name} (${errorMessage(error)}); copying it`);
      return false;
    }
  }
}

// What goes on to the target per write: fewer, larger writes make relaying cheaper (see coalesce).
const RELAY_CHUNK = 512 * 1024;

/** A source blob as upload content: each range the upload asks for is a ranged GET from the source. */
export function remoteBlob(source: RegistryRepository, blob: Descriptor): BlobContent {
  return {
    digest: blob.digest,
    size: blob.size,
    open: (start, end) => {
      const out = coalesce(RELAY_CHUNK);
      source.openBlob(blob.digest, start, end, blob.size).then(
        (stream) => {
          stream.once('error', (error) => out.destroy(error));
          stream.pipe(out);
        },
        (error: Error) => out.destroy(error),
      );
      return out;
    },
  };
}

/**
 * Copies the referrers of every manifest of the tree, and theirs in turn (a signature of an SBOM).
 * Where the target registry does not index a referrer by its `subject` itself, the referrers tag
 * `sha256-<hex>` of the subject is kept up to date, as distribution-spec 1.1 asks of clients.
 */
async function copyReferrers(source: RegistryRepository, target: RegistryRepository, root: Node, sourceRootDigest: string, copier: BlobCopier, logger: Logger): Promise<string[]> {
  const copied: string[] = [];
  const seen = new Set<string>();
  const subjects: string[] = [];
  const collect = (node: Node) => {
    subjects.push(node.stored.digest);
    node.children.forEach(collect);
  };
  collect(root);
  // A narrowed index is new: nothing in the source refers to it.
  if (root.stored.digest !== sourceRootDigest) subjects.shift();
  if (root.stored.digest !== sourceRootDigest) {
    const dropped = await listReferrers(source, sourceRootDigest);
    if (dropped.length > 0) logger.info(`${dropped.length} referrer(s) of the source index ${sourceRootDigest} stay behind: they refer to the whole index, not to the narrowed one`);
  }
  const untagged = new Map<string, Descriptor[]>();
  // Asked once, when the first referrer is found: a registry without the API answers 404.
  let targetIndexes: Promise<boolean> | undefined;
  const hasReferrersApi = () => (targetIndexes ??= target.referrers(root.stored.digest).then((listed) => listed !== undefined));
  while (subjects.length > 0) {
    const subject = subjects.shift()!;
    for (const descriptor of await listReferrers(source, subject)) {
      if (seen.has(descriptor.digest)) continue;
      seen.add(descriptor.digest);
      const stored = await source.getManifest(descriptor.digest);
      if (!stored) throw new ContentError(`The source lists ${descriptor.digest} as a referrer of ${subject}, but does not have it (MANIFEST_UNKNOWN).`);
      const { node } = await readTree(source, withMediaType(stored), undefined, logger);
      await copier.copy(blobsOf(node));
      for (const child of node.children) await putManifests(target, child);
      const present = (await target.manifestDigest(node.stored.digest)) !== undefined;
      const { subjectIndexed } = present ? { subjectIndexed: await hasReferrersApi() } : await target.putManifest(node.stored.digest, node.stored);
      if (!subjectIndexed) untagged.set(subject, [...(untagged.get(subject) ?? []), referrerDescriptor(descriptor, node.stored)]);
      copied.push(descriptor.digest);
      subjects.push(descriptor.digest);
    }
  }
  for (const [subject, descriptors] of untagged) await addToReferrersTag(target, subject, descriptors);
  if (copied.length > 0) logger.info(`Copied ${copied.length} referrer(s): ${copied.join(', ')}`);
  return copied;
}

/** The referrers of `digest` in the source: from its referrers API, else from the referrers tag. */
async function listReferrers(source: RegistryRepository, digest: string): Promise<Descriptor[]> {
  const listed = await source.referrers(digest);
  if (listed) return listed;
  const tagged = await source.getManifest(referrersTag(digest));
  if (!tagged) return [];
  const index = parseManifest(tagged) as Partial<ImageIndex>;
  return Array.isArray(index.manifests) ? index.manifests : [];
}

/** distribution-spec 1.1 "Referrers Tag Schema": `<alg>-<ref>`, truncated to 128 characters. */
function referrersTag(digest: string): string {
  return digest.replace(':', '-').slice(0, 128);
}

function referrerDescriptor(listed: Descriptor, stored: StoredManifest): Descriptor {
  const parsed = parseManifest(stored);
  const descriptor: Descriptor = { mediaType: stored.mediaType, digest: stored.digest, size: stored.bytes.length };
  const artifactType = listed.artifactType ?? parsed.artifactType ?? parsed.config?.mediaType;
  if (artifactType) descriptor.artifactType = artifactType;
  const annotations = listed.annotations ?? parsed.annotations;
  if (annotations) descriptor.annotations = annotations;
  return descriptor;
}

/** Adds descriptors to the subject's referrers tag index in the target, creating it when missing; unchanged when they are listed already. */
async function addToReferrersTag(target: RegistryRepository, subject: string, descriptors: Descriptor[]): Promise<void> {
  const tag = referrersTag(subject);
  const existing = await target.getManifest(tag);
  const index: ImageIndex = existing ? { ...(parseManifest(existing) as ImageIndex) } : { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] };
  const listed = new Set((index.manifests ?? []).map((entry) => entry.digest));
  const missing = descriptors.filter((descriptor) => !listed.has(descriptor.digest));
  if (missing.length === 0) return;
  await target.putManifest(tag, renderJson({ ...index, manifests: [...(index.manifests ?? []), ...missing] }, OCI_INDEX));
}
