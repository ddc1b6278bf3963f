// The assemble builder: a Dockerfile that needs no runtime becomes an image without running a
// container. For each platform the base's manifest and config come from its registry, every
// COPY/ADD becomes a reproducible layer, and the other instructions become the image config.
// The result is what a push (or an OCI layout) needs: blobs, manifests and, for several
// platforms, an index.
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { forEachLimited } from '../concurrency.js';
import { InputError, UserError } from '../errors.js';
import { writeImageLayout, type LayoutBlob } from '../image/writeLayout.js';
import { formatBytes, formatDuration, type Logger } from '../log.js';
import { renderJson, sha256Digest, type PushedBlob, type RenderedManifest } from '../oci/content.js';
import { DOCKER_LAYER_GZIP, OCI_INDEX, OCI_MANIFEST, type Descriptor } from '../oci/mediaTypes.js';
import { formatImageName, resolveBaseImage, type BaseImage, type ImageReader } from './baseImage.js';
import { readIgnoreFile, IgnoreMatcher } from './dockerignore.js';
import type { Layer } from './filesystem.js';
import { formatPlatform, hostPlatform, type ContainerConfig, type HistoryEntry, type ImageConfig, type Platform } from './imageConfig.js';
import { DiffIdCache } from './diffIdCache.js';
import { compressLayerTo, layerDiffId, layerFingerprint, type CompressedLayer } from './layerArchive.js';
import { ContextTree } from './sources.js';
import { buildStages, planBuild, type BuildPlan, type BuiltStage } from './stages.js';

export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';

/** What to build, whichever builder builds it. */
export interface BuildDefinition {
  /** The Dockerfile on disk. */
  dockerfile: string;
  /** The build context folder. */
  context: string;
  buildArgs: ReadonlyMap<string, string>;
  /** Stage to build; the last one when unset. */
  target?: string;
  platforms: Platform[];
  /** Labels added to the image (the `labels` input and the OCI labels of the pipeline). */
  labels: Record<string, string>;
  /** Seconds since the epoch for every time stamp; undefined means 0 (1970), so builds repeat. */
  sourceDateEpoch?: number;
}

export interface AssembleOptions extends BuildDefinition {
  reader: ImageReader;
  /** Private scratch folder; removed by close(). */
  tempDir: string;
  logger: Logger;
  /** Layers compressed at once. Default 4. */
  concurrency?: number;
  /** The compressed layer the target repository already holds for a diff_id, if any (rebuilds skip compressing it). */
  knownLayer?(diffId: string): Promise<PushedBlob | undefined>;
  /** A file that remembers layers' diff_ids across builds on this agent (see DiffIdCache). Default: none. */
  cacheFile?: string;
}

/** A layer of the result: one of the base's (already in a registry) or one this build wrote. */
export type ImageLayer =
  | { kind: 'base'; descriptor: Descriptor; base: BaseImage }
  | { kind: 'built'; descriptor: Descriptor; file?: string };

export interface PlatformImage {
  platform: Platform;
  config: RenderedManifest;
  manifest: RenderedManifest;
  layers: ImageLayer[];
  base?: BaseImage;
}

export interface AssembledImage {
  images: PlatformImage[];
  /** The manifest (one platform) or index (several) that tags point at. */
  root: RenderedManifest;
  /** Layers written by this build, by digest: the files to upload. */
  builtLayers: Map<string, CompressedLayer>;
  /** Removes the compressed layers and extracted base files. */
  close(): Promise<void>;
}

/** Seconds since the epoch in RFC 3339, as Go writes time stamps. */
export function timestamp(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

/** `.dockerignore` next to the Dockerfile as `<name>.dockerignore` wins over the context's (BuildKit's rule). */
async function readDockerignore(dockerfile: string, context: string): Promise<{ matcher: IgnoreMatcher; file?: string }> {
  for (const candidate of [join(dirname(dockerfile), `${basename(dockerfile)}.dockerignore`), join(context, '.dockerignore')]) {
    const text = await readFile(candidate, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    try {
      return { matcher: new IgnoreMatcher(readIgnoreFile(text)), file: candidate };
    } catch (error) {
      throw new UserError(`${candidate}: ${(error as Error).message}`);
    }
  }
  return { matcher: new IgnoreMatcher([]) };
}

/** Which folders, if any, the build leaves out (for the log). */
function describeBuild(plan: BuildPlan): string {
  const names = plan.stages.map((stage) => stage.name ?? `#${stage.index}`);
  return plan.stages.length > 1 ? `stages ${names.join(', ')}` : `stage ${names[0]}`;
}

function cleanContainerConfig(config: ContainerConfig): ContainerConfig {
  const cleaned: ContainerConfig & Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config) as [string, unknown][]) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value) && value.length === 0) continue;
    if (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0) continue;
    if (value === '' || value === false) continue;
    cleaned[key] = value;
  }
  return cleaned;
}

/** Base layers keep their bytes; Docker media types become their OCI twins, as BuildKit's exporter does. */
function baseLayerDescriptor(layer: Descriptor): Descriptor {
  const mediaType = layer.mediaType === DOCKER_LAYER_GZIP ? OCI_LAYER_GZIP : layer.mediaType === DOCKER_LAYER_TAR ? OCI_LAYER_TAR : layer.mediaType;
  const descriptor: Descriptor = { mediaType, digest: layer.digest, size: layer.size };
  if (layer.urls?.length) descriptor.urls = layer.urls;
  if (layer.annotations) descriptor.annotations = layer.annotations;
  return descriptor;
}

export async function assembleImage(options: AssembleOptions): Promise<AssembledImage> {
  const { logger } = options;
  const dockerfile = resolve(options.dockerfile);
  const context = resolve(options.context);
  const contextInfo = await stat(context).catch(() => undefined);
  if (!contextInfo?.isDirectory()) throw new InputError('context', `${options.context} is not a folder; give the build context folder (by default the Dockerfile's folder).`);
  const text = await readFile(dockerfile, 'utf8').catch(() => undefined);
  if (text === undefined) throw new InputError('dockerfile', `${options.dockerfile} cannot be read; give the path of the Dockerfile.`);
  const file = basename(dockerfile);
  const buildPlatform = hostPlatform();
  const plans = options.platforms.map((platform) =>
    planBuild({ text, file, buildArgs: options.buildArgs, target: options.target, platform, buildPlatform }),
  );
  const blockers = plans[0].blockers;
  if (blockers.length > 0) {
    const [first] = blockers;
    const more = blockers.length > 1 ? ` (and ${blockers.length - 1} more step${blockers.length > 2 ? 's' : ''} like it)` : '';
    throw new UserError(`${first.where}: ${first.reason}, which the assemble builder does not do${more}. Move the step into a script step before this task, or use builder: buildkit.`);
  }
  if (plans[0].unusedBuildArgs.length > 0) logger.warn(`No ARG in ${file} uses the build argument(s) ${plans[0].unusedBuildArgs.join(', ')}.`);
  const ignore = await readDockerignore(dockerfile, context);
  if (ignore.file) logger.info(`Applying ${ignore.file}`);
  const tree = new ContextTree(context, ignore.matcher);
  const work = await mkdtemp(join(options.tempDir, 'assemble-'));
  const close = () => rm(work, { recursive: true, force: true });
  try {
    const epoch = options.sourceDateEpoch ?? 0;
    const created = timestamp(epoch);
    const built: BuiltStage[] = [];
    for (const [index, platform] of options.platforms.entries()) {
      logger.info(`Building ${describeBuild(plans[index])} of ${file} for ${formatPlatform(platform)}`);
      built.push(
        await buildStages({
          plan: plans[index],
          platform,
          buildArgs: options.buildArgs,
          context: tree,
          created,
          scratch: work,
          logger,
          resolveImage: (name, wanted, where) => resolveBaseImage(name, { reader: options.reader, platform: wanted, tempDir: work, logger, where }),
        }),
      );
    }
    const layers = [...new Set(built.flatMap((stage) => stage.filesystem.layers.filter((layer) => !layer.empty)))];
    const written = await writeLayers(layers, epoch, work, options);
    const images = built.map((stage, index) => platformImage(stage, options.platforms[index], written.byLayer, created, options.labels));
    const root =
      images.length === 1
        ? images[0].manifest
        : renderJson(
            {
              schemaVersion: 2,
              mediaType: OCI_INDEX,
              manifests: images.map((image) => ({ mediaType: OCI_MANIFEST, digest: image.manifest.digest, size: image.manifest.bytes.length, platform: image.platform })),
            },
            OCI_INDEX,
          );
    return { images, root, builtLayers: written.byDigest, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** A layer as the image references it: compressed digest and size, diff_id, and the file when this build wrote it. */
interface WrittenLayer {
  mediaType: string;
  digest: string;
  size: number;
  diffId: string;
  file?: string;
}

interface WrittenLayers {
  byLayer: Map<Layer, WrittenLayer>;
  byDigest: Map<string, CompressedLayer>;
}

/**
 * Compresses every layer once, several at a time. When the same bytes appear twice (platforms
 * sharing a COPY) or the registry already holds them (a rebuild), the diff_id is taken first so
 * those layers are neither compressed nor uploaded again; a layer whose files are unchanged since
 * an earlier build on this agent (same metadata fingerprint) is not even read for that.
 */
async function writeLayers(layers: Layer[], epoch: number, work: string, options: AssembleOptions): Promise<WrittenLayers> {
  const byLayer = new Map<Layer, WrittenLayer>();
  const byDigest = new Map<string, CompressedLayer>();
  const started = Date.now();
  const cache = await DiffIdCache.open(options.cacheFile);
  const fingerprints = new Map(layers.map((layer) => [layer, layerFingerprint(layer, epoch)]));
  const hashFirst = layers.length > 0 && (options.knownLayer !== undefined || options.platforms.length > 1);
  // diff_ids known before compressing, and whether this run computed them (a cached one may be stale).
  const diffIds = new Map<Layer, { diffId: string; computed: boolean }>();
  if (hashFirst) {
    await forEachLimited(layers, options.concurrency ?? 4, async (layer) => {
      const cached = cache.get(fingerprints.get(layer));
      diffIds.set(layer, cached ? { diffId: cached, computed: false } : { diffId: await layerDiffId(layer, epoch), computed: true });
    });
  }
  const byDiffId = new Map<string, Promise<WrittenLayer>>();
  let reused = 0;
  await forEachLimited(layers, options.concurrency ?? 4, async (layer) => {
    const known = diffIds.get(layer);
    let pending = known ? byDiffId.get(known.diffId) : undefined;
    if (!pending) {
      pending = (async (): Promise<WrittenLayer> => {
        const existing = known ? await options.knownLayer?.(known.diffId) : undefined;
        if (known && existing) {
          reused++;
          cache.set(fingerprints.get(layer), known.diffId);
          options.logger.info(`${layer.createdBy}: unchanged since the image the tags point at (${existing.digest.slice(0, 19)}); not compressed or uploaded again`);
          return { mediaType: OCI_LAYER_GZIP, digest: existing.digest, size: existing.size, diffId: known.diffId };
        }
        const file = join(work, `layer-${byDigest.size}-${Math.random().toString(36).slice(2)}.tar.gz`);
        const compressed = await compressLayerTo(layer, epoch, file, 1);
        if (known?.computed && compressed.diffId !== known.diffId) throw new UserError(`${layer.createdBy}: the copied files changed during the build; run it again once nothing writes to the context.`);
        cache.set(fingerprints.get(layer), compressed.diffId);
        byDigest.set(compressed.digest, compressed);
        return { mediaType: OCI_LAYER_GZIP, digest: compressed.digest, size: compressed.size, file, diffId: compressed.diffId };
      })();
      if (known) byDiffId.set(known.diffId, pending);
    }
    byLayer.set(layer, await pending);
  });
  await cache.save().catch((error: Error) => options.logger.debug(`Could not save the layer cache ${options.cacheFile}: ${error.message}`));
  const total = [...byDigest.values()].reduce((sum, layer) => sum + layer.size, 0);
  options.logger.info(`Wrote ${byDigest.size} layer(s), ${formatBytes(total)} compressed, in ${formatDuration(Date.now() - started)}${reused ? `; ${reused} reused` : ''}`);
  return { byLayer, byDigest };
}

function platformImage(stage: BuiltStage, platform: Platform, written: Map<Layer, WrittenLayer>, created: string, labels: Record<string, string>): PlatformImage {
  const baseLayers: ImageLayer[] = (stage.base?.manifest.layers ?? []).map((descriptor) => ({ kind: 'base', descriptor: baseLayerDescriptor(descriptor), base: stage.base! }));
  const builtLayers: ImageLayer[] = [];
  const diffIds = [...(stage.config.rootfs?.diff_ids ?? [])];
  const history: HistoryEntry[] = [...(stage.config.history ?? [])];
  for (const { entry, layer } of stage.history) {
    const blob = layer && !layer.empty ? written.get(layer) : undefined;
    if (blob) {
      builtLayers.push({ kind: 'built', descriptor: { mediaType: blob.mediaType, digest: blob.digest, size: blob.size }, file: blob.file });
      diffIds.push(blob.diffId);
      history.push(entry);
    } else history.push({ ...entry, empty_layer: true });
  }
  const container = cleanContainerConfig({ ...stage.config.config, Labels: { ...stage.config.config.Labels, ...labels } });
  if (stage.base) {
    container.Labels = {
      ...container.Labels,
      'org.opencontainers.image.base.name': formatImageName({ ...stage.base.name, digest: undefined }),
      'org.opencontainers.image.base.digest': stage.base.digest,
      ...labels,
    };
  }
  const config: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    ...(stage.config.author ? { author: stage.config.author } : {}),
    created,
    config: container,
    rootfs: { type: 'layers', diff_ids: diffIds },
    history,
  };
  const configBlob = renderJson(config, OCI_CONFIG);
  const layers = [...baseLayers, ...builtLayers];
  const manifest = renderJson(
    {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: configBlob.digest, size: configBlob.bytes.length },
      layers: layers.map((layer) => layer.descriptor),
    },
    OCI_MANIFEST,
  );
  return { platform, config: { ...configBlob, digest: sha256Digest(configBlob.bytes) }, manifest, layers, base: stage.base };
}

/** `outputPath`: the same image as an OCI layout, base layers included (downloaded from the base's registry). */
export async function writeAssembledLayout(image: AssembledImage, reader: ImageReader, path: string, refName?: string): Promise<void> {
  const blobs: LayoutBlob[] = [];
  for (const platform of image.images) {
    const config = platform.config;
    blobs.push({ digest: config.digest, size: config.bytes.length, open: () => Promise.resolve(Readable.from([config.bytes])) });
    for (const layer of platform.layers) {
      const { digest, size } = layer.descriptor;
      if (layer.kind === 'base') blobs.push({ digest, size, open: () => reader.blob(layer.base.name, digest) });
      else {
        const file = image.builtLayers.get(digest)?.path;
        // outputPath turns off reusing layers from the registry, so every built layer has its file.
        if (!file) throw new Error(`layer ${digest} has no file to write to the OCI layout`);
        blobs.push({ digest, size, open: () => Promise.resolve(createReadStream(file)) });
      }
    }
  }
  const children = image.images.length > 1 ? image.images.map((platform) => platform.manifest) : [];
  await writeImageLayout({ path, input: 'outputPath', root: image.root, manifests: children, blobs, refName });
}
