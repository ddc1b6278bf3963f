// `helm package` without its time stamps (Helm's chartutil.Save): the same archive layout —
// `<name>/Chart.yaml`, `Chart.lock`, `values.yaml`, `values.schema.json`, templates, other files,
// then each subchart under `charts/<name>/` — with Chart.yaml and Chart.lock rewritten from their
// fields as Helm rewrites them, but every byte a function of the chart's content.
import { gzipSync } from 'node:zlib';
import { writeTar } from '../archive/tar.js';
import { InputError } from '../errors.js';
import { helmVersionRule, type Chart, type ChartFile } from './load.js';
import { renderChartYaml, renderLock, validateMetadata } from './metadata.js';
import { isSemVer } from './semver.js';

export interface ChartOverrides {
  /** Replaces Chart.yaml's version (`helm package --version`); must be SemVer 2. */
  chartVersion?: string;
  /** Replaces Chart.yaml's appVersion (`helm package --app-version`). */
  appVersion?: string;
}

/** Applies the task's overrides to the chart being pushed (never to its subcharts). */
export function applyOverrides(chart: Chart, overrides: ChartOverrides, where: string): Chart {
  if (!overrides.chartVersion && !overrides.appVersion) return chart;
  const metadata = { ...chart.metadata };
  if (overrides.chartVersion) {
    if (!isSemVer(overrides.chartVersion)) {
      throw new InputError('chartVersion', `'${overrides.chartVersion}' is not SemVer 2; use MAJOR.MINOR.PATCH with optional -prerelease and +build, for example 1.4.0 or 1.4.0+$(Build.BuildId).`);
    }
    metadata.version = overrides.chartVersion;
  }
  if (overrides.appVersion) metadata.appVersion = overrides.appVersion;
  // chartutil.Save validates (and so sanitises) the metadata again after the overrides.
  return { ...chart, metadata: validateMetadata(metadata, `${where}/Chart.yaml`, helmVersionRule) };
}

/** The archive's entries in Helm's order, each under `<prefix><chart name>/`. */
function archiveEntries(chart: Chart, prefix = ''): ChartFile[] {
  const base = `${prefix}${chart.metadata.name}/`;
  const entry = (name: string, data: Buffer): ChartFile => ({ name: `${base}${name}`, data });
  const entries = [entry('Chart.yaml', Buffer.from(renderChartYaml(chart.metadata)))];
  // Helm writes the lock only for apiVersion v2; a v1 chart keeps requirements.lock among its files.
  if (chart.lock && chart.metadata.apiVersion === 'v2') entries.push(entry('Chart.lock', Buffer.from(renderLock(chart.lock))));
  if (chart.values) entries.push(entry('values.yaml', chart.values));
  if (chart.schema) entries.push(entry('values.schema.json', chart.schema));
  for (const file of [...chart.templates, ...chart.files]) entries.push(entry(file.name, file.data));
  for (const dependency of chart.dependencies) entries.push(...archiveEntries(dependency, `${base}charts/`));
  return entries;
}

/**
 * The chart as a `.tgz`: same chart, same bytes, same digest. Entries are mode 0644, owner 0:0,
 * with no folder entries (Helm writes none either), every mtime `mtimeSeconds` (default 0, the Unix
 * epoch; SOURCE_DATE_EPOCH is the usual source of another), and the gzip header carries no time.
 */
export function packageChart(chart: Chart, mtimeSeconds = 0): Buffer {
  const tar = writeTar(archiveEntries(chart).map(({ name, data }) => ({ header: { name, size: data.length, mode: 0o644, uid: 0, gid: 0, mtime: mtimeSeconds }, data })));
  return gzipSync(tar, { level: 9 });
}

/** `helm package`'s file name: `<name>-<version>.tgz`. */
export function archiveFileName(chart: Chart): string {
  return `${chart.metadata.name}-${chart.metadata.version}.tgz`;
}
