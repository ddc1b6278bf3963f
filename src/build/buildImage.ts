// The PrivateAcrBuildImage task without Azure DevOps: choose the builder for the Dockerfile, build,
// push (blobs first, tags last) and optionally write an OCI layout. assemble runs here; BuildKit
// builds on its daemon (buildkitBuild.ts).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { openRegistrySession, type RegistrySessionOptions } from '../acr/session.js';
import { InputError, UserError } from '../errors.js';
import { formatBytes, formatDuration } from '../log.js';
import { factTable } from '../runSummary.js';
import { pushImage, readTaggedLayers, type PushResult } from '../oci/push.js';
import { assembleImage, writeAssembledLayout, type BuildDefinition } from './assemble.js';
import { formatImageName } from './baseImage.js';
import { formatPlatform, hostPlatform } from './imageConfig.js';
import { buildWithBuildkit, type BuildkitSettings } from './buildkitBuild.js';
import type { BuildSteps } from './buildkitProgress.js';
import { pushSource, RegistryImageReader } from './registryImages.js';
import { planBuild, type Blocker } from './stages.js';

export type BuilderChoice = 'auto' | 'assemble' | 'buildkit';

/**
 * `auto` takes assemble when nothing the target needs requires a runtime, else BuildKit when the
 * pipeline (or the agent, BUILDKIT_HOST) gave a daemon's address; otherwise the first such step is
 * the error, before anything is read from the registry.
 */
export function chooseBuilder(choice: BuilderChoice, blockers: Blocker[], buildkit: Pick<BuildkitSettings, 'address'>): 'assemble' | 'buildkit' {
  if (choice !== 'auto') return choice;
  if (blockers.length === 0) return 'assemble';
  if (buildkit.address) return 'buildkit';
  const [first] = blockers;
  const more = blockers.length > 1 ? ` (and ${blockers.length - 1} more step(s))` : '';
  throw new UserError(
    `${first.where}: ${first.reason}, which the assemble builder does not do${more}, and no BuildKit daemon is set: give buildkitAddress (the agent chart's builder sets it on its agents), or move the step into a script step before this task.`,
  );
}

export interface BuildContainerImageOptions extends RegistrySessionOptions, BuildDefinition {
  repository: string;
  tags: string[];
  builder: BuilderChoice;
  buildkit: BuildkitSettings;
  /** Also write the image as an OCI layout here. */
  outputPath?: string;
  /** Private scratch space (compressed layers, base files, BuildKit's login); a folder is made inside and removed. */
  tempDir: string;
  /** Aborting cancels a BuildKit build on its daemon. */
  signal?: AbortSignal;
  /** Layers compressed and blobs uploaded at once. Default 4. */
  concurrency?: number;
  /** Where diff_ids of earlier builds are remembered (a folder that outlives the job). Default: nowhere. */
  cacheFile?: string;
}

export interface BuildContainerImageResult extends PushResult {
  /** `registry/repository@digest`. */
  imageRef: string;
  builder: 'assemble' | 'buildkit';
  platforms: string[];
  /** The base image of each platform (`name@digest`), when there is one. */
  bases: string[];
  /** assemble: layers this build wrote and compressed (the rest were the base's, or unchanged since the last push). */
  layersWritten?: number;
  /** BuildKit: the Dockerfile steps it ran and took from its cache. */
  steps?: BuildSteps;
}

/** The PrivateAcrBuildImage task without Azure DevOps. */
export async function buildContainerImage(options: BuildContainerImageOptions): Promise<BuildContainerImageResult> {
  const { logger } = options;
  const started = Date.now();
  const blockers = await inspectDockerfile(options);
  const builder = chooseBuilder(options.builder, blockers, options.buildkit);
  if (builder === 'buildkit') {
    if (options.builder === 'auto') logger.info(`Building with BuildKit: ${blockers[0].where} needs it (${blockers[0].reason})`);
    const result = await buildWithBuildkit(options);
    const imageRef = `${options.host}/${options.repository}@${result.digest}`;
    const durationMs = Date.now() - started;
    logger.info(`Built and pushed ${imageRef} in ${formatDuration(durationMs)}: ${result.steps.total} Dockerfile steps, ${result.steps.cached} from the cache`);
    return { ...result, durationMs, imageRef, builder, platforms: options.platforms.map(formatPlatform), bases: [] };
  }
  const work = await mkdtemp(join(options.tempDir, 'build-image-'));
  const session = openRegistrySession(options);
  try {
    const reader = new RegistryImageReader(session, work);
    const repository = session.client.repository(options.repository, 'push');
    // A rebuild finds the layers the tags point at now by diff_id; outputPath needs every layer's bytes.
    const tagged = options.outputPath ? undefined : readTaggedLayers(repository, options.tags, logger);
    const built = await assembleImage({
      dockerfile: options.dockerfile,
      context: options.context,
      buildArgs: options.buildArgs,
      target: options.target,
      platforms: options.platforms,
      labels: options.labels,
      sourceDateEpoch: options.sourceDateEpoch,
      reader,
      tempDir: work,
      logger,
      concurrency: options.concurrency,
      knownLayer: tagged && (async (diffId) => (await tagged).get(diffId)),
      cacheFile: options.cacheFile,
    });
    try {
      if (options.outputPath) {
        await writeAssembledLayout(built, reader, options.outputPath, options.tags[0]);
        logger.info(`Wrote the image as an OCI layout to ${options.outputPath}`);
      }
      logger.info(`Pushing ${built.root.digest} to ${options.host}/${options.repository} (tags: ${options.tags.join(', ')})`);
      const result = await pushImage({ client: session.client, repository: options.repository, root: pushSource(built, session), tags: options.tags, concurrency: options.concurrency, logger });
      const imageRef = `${options.host}/${options.repository}@${result.digest}`;
      logger.info(
        `Built and pushed ${imageRef} in ${formatDuration(Date.now() - started)}: ${result.blobsUploaded} blobs uploaded (${formatBytes(result.bytesUploaded)}), ${result.blobsMounted} mounted from the base, ${result.blobsSkipped} already present`,
      );
      return {
        ...result,
        durationMs: Date.now() - started,
        imageRef,
        builder,
        platforms: options.platforms.map(formatPlatform),
        bases: built.images.filter((image) => image.base).map((image) => `${formatImageName({ ...image.base!.name, digest: undefined })}@${image.base!.digest}`),
        layersWritten: built.builtLayers.size,
      };
    } finally {
      await built.close();
    }
  } finally {
    await session.close();
    await rm(work, { recursive: true, force: true });
  }
}

/** The steps the target needs that assemble cannot do, read from the Dockerfile alone. */
async function inspectDockerfile(options: BuildContainerImageOptions): Promise<Blocker[]> {
  const text = await readFile(options.dockerfile, 'utf8').catch(() => undefined);
  if (text === undefined) throw new InputError('dockerfile', `${options.dockerfile} cannot be read; give the path of the Dockerfile.`);
  return planBuild({ text, file: basename(options.dockerfile), buildArgs: options.buildArgs, target: options.target, platform: options.platforms[0], buildPlatform: hostPlatform() }).blockers;
}

/** The run summary attached to the pipeline run. */
export function renderBuildSummary(result: BuildContainerImageResult): string {
  return factTable('Image built and pushed', [
    ['Image', `\`${result.imageRef}\``],
    ['Tags', result.tags.map((tag) => `\`${tag}\``).join(', ')],
    ['Builder', result.builder],
    ['Platforms', result.platforms.join(', ')],
    ['Base', result.bases.length ? [...new Set(result.bases)].map((base) => `\`${base}\``).join('<br>') : undefined],
    [
      'Layers',
      result.layersWritten !== undefined
        ? `${result.layersWritten} written; ${result.blobsUploaded} blobs uploaded (${formatBytes(result.bytesUploaded)}), ${result.blobsMounted} mounted, ${result.blobsSkipped} already in the registry`
        : undefined,
    ],
    ['Steps', result.steps ? `${result.steps.total} Dockerfile steps, ${result.steps.cached} from the cache` : undefined],
    ['Time', formatDuration(result.durationMs)],
  ]);
}
