// `helm package` without its time stamps (helm pkg/chartutil/save.go): the same archive layout —
// `<name>/Chart.yaml`, `Chart.lock`, `values.yaml`, `values.schema.json`, templates, other files,
// then each subchart under `charts/<name>/` — but every byte a function of the chart's content.
import { InputError } from '../errors.js';
import { writeTarGz, type ChartFile } from './archive.js';
import type { Chart } from './load.js';
import { renderChartYaml } from './metadata.js';
import { isSemVer } from './semver.js';

export interface ChartOverrides {
  /** Replaces Chart.yaml's version (`helm package --version`); must be SemVer 2. */
  chartVersion?: string;
  /** Replaces Chart.yaml's appVersion (`helm package --app-version`). */
  appVersion?: string;
}

/** Applies the task's overrides to the chart being pushed (never to its subcharts). */
export function applyOverrides(chart: Chart, overrides: ChartOverrides): Chart {
  const metadata = { ...chart.metadata };
  if (overrides.chartVersion) {
    if (!isSemVer(overrides.chartVersion)) {
      throw new InputError('chartVersion', `'${overrides.chartVersion}' is not SemVer 2; use MAJOR.MINOR.PATCH with optional -prerelease and +build, for example 1.4.0 or 1.4.0+$(Build.BuildId).`);
    }
    metadata.version = overrides.chartVersion;
  }
  if (overrides.appVersion) metadata.appVersion = overrides.appVersion;
  return { ...chart, metadata };
}

/** The archive's entries in Helm's order, each under `<prefix><chart name>/`. */
export function archiveEntries(chart: Chart, prefix = ''): ChartFile[] {
  const base = `${prefix}${chart.metadata.name}/`;
  const entry = (name: string, data: Buffer): ChartFile => ({ name: `${base}${name}`, data });
  const entries = [entry('Chart.yaml', Buffer.from(renderChartYaml(chart.metadata)))];
  if (chart.lock) entries.push(entry('Chart.lock', chart.lock));
  if (chart.values) entries.push(entry('values.yaml', chart.values));
  if (chart.schema) entries.push(entry('values.schema.json', chart.schema));
  for (const file of [...chart.templates, ...chart.files]) entries.push(entry(file.name, file.data));
  for (const dependency of chart.dependencies) entries.push(...archiveEntries(dependency, `${base}charts/`));
  return entries;
}

/**
 * The chart as a `.tgz`: same chart, same bytes, same digest. `mtimeSeconds` is every entry's
 * modification time (default 0, the Unix epoch; SOURCE_DATE_EPOCH is the usual source of another).
 */
export function packageChart(chart: Chart, mtimeSeconds = 0): Buffer {
  return writeTarGz(archiveEntries(chart), mtimeSeconds);
}

/** `helm package`'s file name: `<name>-<version>.tgz`. */
export function archiveFileName(chart: Chart): string {
  return `${chart.metadata.name}-${chart.metadata.version}.tgz`;
}
