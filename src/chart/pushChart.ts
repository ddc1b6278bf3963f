// The PrivateAcrPushChart task without Azure DevOps: load or package a chart, then push it the way
// `helm push` lays it out (helm pkg/registry Client.Push, v3.22) through the shared registry session.
import { readFile, stat } from 'node:fs/promises';
import { InputError, UserError } from '../errors.js';
import { factTable } from '../runSummary.js';
import { memoryBlob, resolved, sha256Digest, type ManifestSource, type ResolvedBlob } from '../oci/content.js';
import { OCI_MANIFEST } from '../oci/mediaTypes.js';
import { pushImage, type PushResult } from '../oci/push.js';
import { validateRepository } from '../oci/reference.js';
import { openRegistrySession, type RegistrySessionOptions } from '../acr/session.js';
import { formatBytes } from '../log.js';
import { chartFilesFromArchive, checkDependenciesVendored, helmVersionRule, loadChartFiles, readChartFolder, type VersionRule } from './load.js';
import { goJsonEscape, renderConfigJson, type ChartMetadata } from './metadata.js';
import { applyOverrides, archiveFileName, packageChart, type ChartOverrides } from './package.js';
import { chartTag, isSemVer } from './semver.js';

const HELM_CONFIG = 'application/vnd.cncf.helm.config.v1+json';
const HELM_CHART_LAYER = 'application/vnd.cncf.helm.chart.content.v1.tar+gzip';
const HELM_PROVENANCE_LAYER = 'application/vnd.cncf.helm.chart.provenance.v1.prov';

/** A chart ready to push: its metadata, its archive bytes and, for a signed .tgz, its provenance. */
export interface PreparedChart {
  metadata: ChartMetadata & { name: string; version: string };
  archive: Buffer;
  /** Name the archive would have on disk (`<name>-<version>.tgz`). */
  archiveName: string;
  provenance?: Buffer;
  source: 'folder' | 'archive';
}

export interface PrepareChartOptions extends ChartOverrides {
  /** A chart folder (with Chart.yaml) or a packaged `.tgz`, pushed as is. */
  chartPath: string;
  /** Entry times of a packaged folder and the `created` annotation, in Unix seconds. Default 0. */
  sourceDateEpoch?: number;
}

/** Everything that can go wrong with the chart itself happens here, before any network call. */
export async function prepareChart(options: PrepareChartOptions): Promise<PreparedChart> {
  const { chartPath } = options;
  const info = await stat(chartPath).catch(() => undefined);
  if (!info) throw new InputError('chartPath', `${chartPath} does not exist; point it at a chart folder (the one with Chart.yaml) or a packaged .tgz.`);

  if (info.isDirectory()) {
    const loaded = loadChartFiles(await readChartFolder(chartPath), chartPath, pushedVersionRule);
    checkDependenciesVendored(loaded, chartPath);
    const chart = applyOverrides(loaded, options, chartPath);
    const archive = packageChart(chart, options.sourceDateEpoch);
    // helm push reads the metadata back from the archive (a v1 chart's dependencies come from its
    // requirements.yaml again), so the config and annotations are made from that reading too.
    const pushed = loadChartFiles(chartFilesFromArchive(archive, chartPath), chartPath, pushedVersionRule);
    return { metadata: named(pushed.metadata), archive, archiveName: archiveFileName(chart), source: 'folder' };
  }

  if (options.chartVersion || options.appVersion) {
    throw new InputError(options.chartVersion ? 'chartVersion' : 'appVersion', `${chartPath} is a packaged chart, pushed as is; set the version when packaging it, or point chartPath at the chart folder.`);
  }
  const archive = await readFile(chartPath);
  let chart;
  try {
    chart = loadChartFiles(chartFilesFromArchive(archive, chartPath), chartPath, pushedVersionRule);
  } catch (error) {
    if (error instanceof InputError || !(error instanceof UserError)) throw error;
    throw new InputError('chartPath', `${error.message} Point chartPath at a chart folder or a .tgz made by helm package.`);
  }
  // `helm package --sign` writes the provenance next to the archive; `helm push` sends it along.
  const provenance = await readFile(`${chartPath}.prov`).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  return { metadata: named(chart.metadata), archive, archiveName: archiveFileName(chart), provenance, source: 'archive' };
}

/**
 * The pushed chart's version names its tag, so it must be full SemVer 2, the form Helm's docs
 * require; Helm's own parser also takes `1.2` or `v1.2.3` (and YAML turns `version: 1.0` into "1").
 */
const pushedVersionRule: VersionRule = (version) =>
  helmVersionRule(version) ??
  (isSemVer(version) ? undefined : 'this task pushes only full SemVer 2 versions (Helm alone would also take this one); write MAJOR.MINOR.PATCH, quoted, for example version: "1.0.0".');

function named(metadata: ChartMetadata): PreparedChart['metadata'] {
  return metadata as PreparedChart['metadata'];
}

/**
 * The manifest `helm push` writes: config = Chart.yaml's metadata as JSON, the chart layer and the
 * provenance layer sorted by digest, Helm's OCI annotations. Like Helm, no top-level `mediaType`:
 * the media type travels in the Content-Type, which is what `helm pull` checks.
 */
function chartManifest(chart: PreparedChart, sourceDateEpoch = 0): ManifestSource {
  const config = memoryBlob(Buffer.from(renderConfigJson(chart.metadata)), HELM_CONFIG);
  const layers: ResolvedBlob[] = [memoryBlob(chart.archive, HELM_CHART_LAYER)];
  if (chart.provenance) layers.push(memoryBlob(chart.provenance, HELM_PROVENANCE_LAYER));
  layers.sort((a, b) => (a.digest < b.digest ? -1 : 1));
  const descriptor = (blob: ResolvedBlob) => ({ mediaType: blob.mediaType, digest: blob.digest, size: blob.size });
  const manifest = {
    schemaVersion: 2,
    config: descriptor(config),
    layers: layers.map(descriptor),
    annotations: chartAnnotations(chart.metadata, sourceDateEpoch),
  };
  const bytes = Buffer.from(goJsonEscape(JSON.stringify(manifest)));
  const rendered = { mediaType: OCI_MANIFEST, bytes, digest: sha256Digest(bytes) };
  return { blobs: [config, ...layers].map(resolved), children: [], render: () => Promise.resolve(rendered) };
}

/**
 * helm pkg/registry generateOCIAnnotations: description, title, version, url, created, source
 * (first of `sources`), authors (`name (email)`, comma-separated), then the chart's own
 * annotations, which may not replace title or version. Keys sorted, as Go writes a map.
 */
export function chartAnnotations(metadata: ChartMetadata, sourceDateEpoch: number): Record<string, string> {
  const annotations: Record<string, string> = {};
  const add = (key: string, value: string | undefined) => {
    if (value && value.trim()) annotations[key] = value;
  };
  add('org.opencontainers.image.description', metadata.description);
  add('org.opencontainers.image.title', metadata.name);
  add('org.opencontainers.image.version', metadata.version);
  add('org.opencontainers.image.url', metadata.home);
  // Go's time.RFC3339: no fractional seconds.
  add('org.opencontainers.image.created', new Date(sourceDateEpoch * 1000).toISOString().replace(/\.\d+Z$/, 'Z'));
  add('org.opencontainers.image.source', metadata.sources?.[0]);
  if (metadata.maintainers?.length) {
    add('org.opencontainers.image.authors', metadata.maintainers.map((m) => `${m?.name ?? ''}${m?.email ? ` (${m.email})` : ''}`).join(', '));
  }
  for (const [key, value] of Object.entries(metadata.annotations ?? {})) {
    if (key !== 'org.opencontainers.image.title' && key !== 'org.opencontainers.image.version') annotations[key] = value;
  }
  return Object.fromEntries(Object.entries(annotations).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export interface PushHelmChartOptions extends RegistrySessionOptions, PrepareChartOptions {
  /** Namespace the chart goes under (`helm push … oci://registry/<repository>`). */
  repository: string;
}

export interface PushHelmChartResult extends PushResult {
  /** `oci://registry/repository/name`, what `helm install|upgrade` takes with `--version`. */
  chartRef: string;
  chartName: string;
  chartVersion: string;
  /** `registry/repository/name:tag`, as `helm push` prints it. */
  reference: string;
  source: PreparedChart['source'];
  archiveBytes: number;
  provenance: boolean;
}

export async function pushHelmChart(options: PushHelmChartOptions): Promise<PushHelmChartResult> {
  const { logger } = options;
  const chart = await prepareChart(options);
  const { name, version } = chart.metadata;
  const repository = chartRepository(options.repository, name, options.chartPath);
  const tag = chartTag(version);
  const reference = `${options.host}/${repository}:${tag}`;
  logger.info(
    chart.source === 'folder'
      ? `Packaged ${options.chartPath} as ${chart.archiveName} (${formatBytes(chart.archive.length)}; the same content always packs to the same bytes)`
      : `Pushing ${options.chartPath} as is${chart.provenance ? ' with its provenance file' : ''}`,
  );
  const session = openRegistrySession(options);
  try {
    logger.info(`Pushing chart ${name} ${version} to ${reference}`);
    const result = await pushImage({ client: session.client, repository, root: chartManifest(chart, options.sourceDateEpoch), tags: [tag], logger });
    logger.info(`Pushed ${reference}@${result.digest}: ${result.blobsUploaded} blobs uploaded, ${result.blobsSkipped} already present`);
    return {
      ...result,
      chartRef: `oci://${options.host}/${repository}`,
      chartName: name,
      chartVersion: version,
      reference,
      source: chart.source,
      archiveBytes: chart.archive.length,
      provenance: chart.provenance !== undefined,
    };
  } finally {
    await session.close();
  }
}

/** `<repository>/<chart name>`; a chart name must also be a valid repository path component. */
function chartRepository(namespace: string, name: string, chartPath: string): string {
  try {
    return validateRepository(`${namespace}/${name}`);
  } catch {
    throw new InputError('chartPath', `${chartPath}: chart name '${name}' cannot be part of a registry repository; use lower-case letters, digits, '-', '_' and '.'.`);
  }
}

/** The run summary attached to the pipeline run. */
export function renderChartSummary(result: PushHelmChartResult): string {
  return factTable('Helm chart pushed', [
    ['Chart', `\`${result.chartRef}\` version \`${result.chartVersion}\``],
    ['Reference', `\`${result.reference}\``],
    ['Digest', `\`${result.digest}\``],
    ['Source', `${result.source === 'folder' ? 'chart folder, packaged reproducibly' : 'packaged chart, pushed as is'}${result.provenance ? ', with provenance' : ''}`],
    ['Uploaded', `${result.blobsUploaded} blobs, ${formatBytes(result.bytesUploaded)} (${result.blobsSkipped} already in the registry; archive ${formatBytes(result.archiveBytes)})`],
    ['Install', `\`helm upgrade --install <release> ${result.chartRef} --version ${result.chartVersion}\``],
  ]);
}
