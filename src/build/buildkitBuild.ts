// The BuildKit builder: the Dockerfile goes to a BuildKit daemon (the agent chart's `builder`) over
// mTLS, which runs every step, RUN included, and pushes the result by digest. Credentials stay on
// the agent: buildctl answers the daemon's registry requests from a docker config the task writes
// into a private folder (the ACR refresh token as `identitytoken`, which BuildKit trades for
// short-lived access tokens itself) and removes afterwards. The tags move last, with the task's own
// registry client, all or none; a failed build moves none.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeDockerConfig } from '../acr/dockerConfig.js';
import { openRegistrySession, type RegistrySessionOptions } from '../acr/session.js';
import { helmNetworkEnvironment } from '../deploy/helmNetwork.js';
import { InputError, UserError } from '../errors.js';
import { checkLayoutTarget } from '../image/writeLayout.js';
import { pushImage, type PushResult } from '../oci/push.js';
import type { BuildDefinition } from './assemble.js';
import { buildctlArgs, buildctlEnvironment, certificateFiles, runBuildctl } from './buildctl.js';
import { BuildkitProgress, type BuildSteps } from './buildkitProgress.js';
import { formatPlatform } from './imageConfig.js';
import type { BuildSecret } from './options.js';

/** Where and how the BuildKit builder reaches its daemon (the `buildkit*`, `cacheRepository` and `buildSecrets` inputs). */
export interface BuildkitSettings {
  /** `tcp://host:port` of the daemon. */
  address?: string;
  /** Folder with ca.pem, cert.pem and key.pem (or ca.crt, tls.crt, tls.key). */
  certificates: string;
  /** Repository of the same registry for the build cache (`<repository>:buildcache`). */
  cacheRepository?: string;
  secrets: BuildSecret[];
}

export interface BuildkitImageOptions extends RegistrySessionOptions, BuildDefinition {
  repository: string;
  tags: string[];
  buildkit: BuildkitSettings;
  /** Also export the image as an OCI layout here. */
  outputPath?: string;
  /** Private scratch space: the docker config and BuildKit's metadata go into a folder made and removed here. */
  tempDir: string;
  /** Aborting cancels the build on the daemon. */
  signal?: AbortSignal;
}

export interface BuildkitImageResult extends PushResult {
  steps: BuildSteps;
}

/** The tag every build of a cache repository shares, as BuildKit's documentation names it. */
const CACHE_TAG = 'buildcache';

/** `tcp://host:port` → `host:port`; anything else is refused before buildctl sees it. */
export function daemonHost(address: string): string {
  const match = /^tcp:\/\/([^/\s]+:\d+)\/?$/.exec(address);
  if (!match) throw new InputError('buildkitAddress', `'${address}' is not tcp://host:port; give the daemon's address, for example tcp://buildkitd.buildkit.svc:1234.`);
  return match[1];
}

/** Builds and pushes with BuildKit; the tags move only once BuildKit has pushed everything. */
export async function buildWithBuildkit(options: BuildkitImageOptions): Promise<BuildkitImageResult> {
  const { logger, buildkit } = options;
  if (!buildkit.address) {
    throw new InputError('buildkitAddress', "is empty, and the BuildKit builder needs its daemon's address (tcp://host:port); the agent chart's builder gives it to its agents as BUILDKIT_HOST.");
  }
  const daemon = daemonHost(buildkit.address);
  const connection = { address: buildkit.address, ...(await certificateFiles(buildkit.certificates, 'buildkitCertificates')) };
  if (options.outputPath) await checkLayoutTarget(options.outputPath, 'outputPath');
  const work = await mkdtemp(join(options.tempDir, 'buildkit-'));
  const session = openRegistrySession(options);
  try {
    const login = await session.loginFor(options.host);
    // buildctl also keeps its `.token_seed` in this folder.
    await writeDockerConfig(join(work, 'config.json'), new Map(login ? [[options.host, login]] : []), options.secrets);
    const challenge = await session.client.challenge();
    const network = await helmNetworkEnvironment({
      transport: options.transport,
      folder: work,
      // The daemon is in the cluster: never through the agent's proxy.
      directHosts: [daemon],
      // buildctl itself only fetches registry tokens, at the realm.
      otherHosts: [options.host, ...(challenge ? [new URL(challenge.realm).host] : [])],
    });
    const metadataFile = join(work, 'metadata.json');
    const progress = new BuildkitProgress(logger);
    const args = buildctlArgs({
      connection,
      dockerfile: options.dockerfile,
      context: options.context,
      buildArgs: options.buildArgs,
      target: options.target,
      platforms: options.platforms.map(formatPlatform),
      labels: options.labels,
      sourceDateEpoch: options.sourceDateEpoch,
      image: `${options.host}/${options.repository}`,
      cache: buildkit.cacheRepository && `${options.host}/${buildkit.cacheRepository}:${CACHE_TAG}`,
      secrets: buildkit.secrets,
      metadataFile,
      outputPath: options.outputPath,
    });
    logger.info(`Building on the BuildKit daemon at ${buildkit.address}${buildkit.cacheRepository ? `, cache in ${options.host}/${buildkit.cacheRepository}:${CACHE_TAG}` : ''}`);
    await runBuildctl(args, {
      env: buildctlEnvironment(process.env, work, network),
      logger,
      progress,
      signal: options.signal,
      describe: { address: buildkit.address, certificates: buildkit.certificates },
    });
    const digest = await resultDigest(metadataFile);
    // BuildKit pushed the manifest by digest only; the tags go on the bytes the registry holds.
    const repository = session.client.repository(options.repository, 'push');
    const stored = await repository.getManifest(digest);
    if (!stored) throw new UserError(`BuildKit reported pushing ${digest}, but ${options.host}/${options.repository} does not have it; no tag was moved.`);
    logger.info(`Moving tags ${options.tags.join(', ')} to ${digest}`);
    const result = await pushImage({ client: session.client, repository: options.repository, root: { blobs: [], children: [], render: () => Promise.resolve(stored) }, tags: options.tags, logger });
    return { ...result, steps: progress.counts() };
  } finally {
    await session.close();
    await rm(work, { recursive: true, force: true });
  }
}

/** The pushed manifest's (or index's) digest from buildctl's `--metadata-file`. */
async function resultDigest(metadataFile: string): Promise<string> {
  const metadata = JSON.parse(await readFile(metadataFile, 'utf8').catch(() => '{}')) as Record<string, unknown>;
  const digest = metadata['containerimage.digest'];
  if (typeof digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(digest)) throw new UserError('BuildKit finished without reporting the digest it pushed; no tag was moved.');
  return digest;
}
