// PrivateAcrImport@1's core: bring images and artifacts (base images, chart dependencies, the Trivy
// databases) into the private registry from the agent, which can reach the public registries when
// the registry itself cannot. Each source is copied whole by copyImage: same digests, every
// platform unless narrowed, referrers included; tags move when an image is complete.
import { openRegistrySession, type RegistrySessionOptions } from '../acr/session.js';
import { InputError } from '../errors.js';
import { HttpTransport } from '../http/transport.js';
import { formatBytes, formatDuration } from '../log.js';
import { copyImage, formatPlatform, type CopyResult, type Platform } from '../oci/copy.js';
import { formatImageReference, parseImageReference, validateRepository, validateTag } from '../oci/reference.js';
import { RegistryClient } from '../oci/registry.js';
import { RealmTokenProvider } from '../oci/tokens.js';

/** One line of `images`: where from, and where to in the private registry. */
export interface ImportLine {
  /** The source as written: the key of the `digests` output. */
  text: string;
  /** Registry API host of the source (Docker Hub's names resolve to registry-1.docker.io). */
  host: string;
  repository: string;
  /** Tag or digest to read; a digest when both are given. */
  reference: string;
  target: { repository: string; tag?: string };
}

// Docker Hub: names without a registry are its, and its API answers on registry-1.docker.io.
const DOCKER_HUB_NAMES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);
const DOCKER_HUB_API = 'registry-1.docker.io';

/**
 * Reads `images`: one `source [target-repository[:tag]]` per line; blank lines and `#` comments are
 * skipped. The target repository defaults to the source's path (`library/alpine` for `alpine`), the
 * tag to the source's; a source given by digest alone lands by digest alone.
 */
export function parseImportLines(text: string, input = 'images'): ImportLine[] {
  const lines: ImportLine[] = [];
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (!line) continue;
    const words = line.split(/\s+/);
    const where = `line ${index + 1}`;
    if (words.length > 2) throw new InputError(input, `${where} has ${words.length} words; write 'source [target-repository[:tag]]'.`);
    const source = parseImageReference(words[0], input);
    const hubLike = !source.host || DOCKER_HUB_NAMES.has(source.host);
    const repository = hubLike && !source.repository.includes('/') ? `library/${source.repository}` : source.repository;
    let target = { repository, tag: source.tag };
    if (words[1]) {
      const colon = words[1].lastIndexOf(':');
      const name = colon > 0 ? words[1].slice(0, colon) : words[1];
      const tag = colon > 0 ? validateTag(words[1].slice(colon + 1), input) : source.tag;
      target = { repository: validateRepository(name, input), tag };
    }
    lines.push({ text: words[0], host: hubLike ? DOCKER_HUB_API : source.host!, repository, reference: source.digest ?? source.tag!, target });
  }
  if (lines.length === 0) throw new InputError(input, "lists no image; write one 'source [target-repository[:tag]]' per line, for example ghcr.io/aquasecurity/trivy-db:2.");
  return lines;
}

export interface ImportImagesOptions extends Omit<RegistrySessionOptions, 'host'> {
  /** The private registry's login server. */
  registry: string;
  images: ImportLine[];
  /** Credentials for sources on one registry (a Docker Registry connection); other sources are read anonymously. */
  sourceCredentials?: { host: string; username: string; password: string };
  /** Platforms of multi-platform images to keep; default all. */
  platforms?: Platform[];
  /** Blobs in flight at once, per image. Default 8: each waits on two registries (measured against skopeo copy --all). */
  concurrency?: number;
}

export interface ImportedImage {
  source: string;
  /** `registry/repository[:tag]` it landed at. */
  target: string;
  copy: CopyResult;
}

export interface ImportImagesResult {
  images: ImportedImage[];
  /** source (as written) → digest in the private registry: the `digests` output. */
  digests: Record<string, string>;
}

export async function importImages(options: ImportImagesOptions): Promise<ImportImagesResult> {
  const { logger } = options;
  const session = openRegistrySession({ ...options, host: options.registry });
  // Sources are other registries, reached with the same network settings but their own logins.
  const http = new HttpTransport({ logger, ...options.transport });
  const sourceClients = new Map<string, RegistryClient>();
  const sourceClient = (host: string): RegistryClient => {
    // A source in the private registry itself is read as the task's identity, which also lets blobs be mounted.
    if (host === options.registry) return session.client;
    let client = sourceClients.get(host);
    if (!client) {
      const credentials = options.sourceCredentials && sameHost(options.sourceCredentials.host, host) ? options.sourceCredentials : undefined;
      client = new RegistryClient({ host, http, tokens: new RealmTokenProvider(http, options.secrets, credentials), logger });
      sourceClients.set(host, client);
    }
    return client;
  };
  try {
    const images: ImportedImage[] = [];
    for (const line of options.images) {
      const target = formatImageReference({ host: options.registry, repository: line.target.repository, tag: line.target.tag });
      logger.info(`Importing ${line.text} into ${target}`);
      const copy = await copyImage({
        source: { client: sourceClient(line.host), repository: line.repository, reference: line.reference },
        target: { client: session.client, repository: line.target.repository, tags: line.target.tag ? [line.target.tag] : [] },
        platforms: options.platforms,
        concurrency: options.concurrency ?? 8,
        logger,
      });
      logger.info(
        `${target}@${copy.digest}: ${copy.manifests} manifest(s), ${copy.blobsCopied} blob(s) copied (${formatBytes(copy.bytesCopied)}), ${copy.blobsMounted} mounted, ${copy.blobsSkipped} already there, ${copy.referrers.length} referrer(s), in ${formatDuration(copy.durationMs)}`,
      );
      images.push({ source: line.text, target, copy });
    }
    return { images, digests: Object.fromEntries(images.map((image) => [image.source, image.copy.digest])) };
  } finally {
    await Promise.all([session.close(), http.close()]);
  }
}

/** A connection's registry URL names Docker Hub in several ways. */
function sameHost(connection: string, host: string): boolean {
  return connection === host || (DOCKER_HUB_NAMES.has(connection) && host === DOCKER_HUB_API);
}

/** The run summary: where each source landed, by digest, and what moved. */
export function renderImportSummary(result: ImportImagesResult, platforms: Platform[] | undefined): string {
  const lines = ['### Images imported', '', '| Source | Imported as | Digest | Copied | Mounted | Already there | Referrers |', '|---|---|---|---:|---:|---:|---:|'];
  for (const { source, target, copy } of result.images) {
    lines.push(`| \`${source}\` | \`${target}\` | \`${copy.digest}\` | ${copy.blobsCopied} (${formatBytes(copy.bytesCopied)}) | ${copy.blobsMounted} | ${copy.blobsSkipped} | ${copy.referrers.length} |`);
  }
  const narrowed = result.images.filter(({ copy }) => copy.narrowedTo);
  if (narrowed.length > 0) {
    lines.push('', `Narrowed to ${platforms?.map(formatPlatform).join(', ')}: these are new indexes, with digests of their own:`);
    for (const { source, copy } of narrowed) lines.push(`- \`${source}\`: source index \`${copy.sourceDigest}\`, imported index \`${copy.digest}\` (${copy.narrowedTo?.join(', ')})`);
  }
  return `${lines.join('\n')}\n`;
}
