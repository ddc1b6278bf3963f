// Loading a chart the way helm pkg/chart/loader does (v3.22): the folder walked in name order with
// `.helmignore` applied, files sorted into their roles, vendored subcharts in charts/ loaded as
// charts of their own (folders or .tgz archives). Everything is checked before anything is pushed.
import { lstat, readdir, readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { chartFilesFromArchive, MAX_FILE_BYTES, type ChartFile } from './archive.js';
import { HelmIgnore } from './helmignore.js';
import { chartError, isPlainObject, parseChartYaml, parseYaml, validateMetadata, type ChartMetadata } from './metadata.js';

/** A loaded chart, split as Helm's `chart.Chart` is; file names are relative to the chart root. */
export interface Chart {
  metadata: ChartMetadata;
  /** Chart.lock as written by `helm dependency update` (apiVersion v2 only). */
  lock?: Buffer;
  values?: Buffer;
  schema?: Buffer;
  /** templates/…, sorted by name. */
  templates: ChartFile[];
  /** Every other file (README, crds/…, files the templates read …), sorted by name. */
  files: ChartFile[];
  /** Vendored subcharts from charts/, sorted by chart name. */
  dependencies: Chart[];
}

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * Reads a chart folder. Symbolic links are followed as Helm follows them, but only to targets
 * inside the chart folder: a link out of it would package whatever the agent happens to have there.
 */
export async function readChartFolder(folder: string): Promise<ChartFile[]> {
  const root = await realpath(folder);
  let ignore = HelmIgnore.parse('');
  try {
    ignore = HelmIgnore.parse(await readFile(join(root, '.helmignore'), 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const files: ChartFile[] = [];

  const visit = async (absolute: string, name: string, ancestors: Set<string>): Promise<void> => {
    let info = await lstat(absolute);
    if (info.isSymbolicLink()) {
      const target = await realpath(absolute).catch(() => undefined);
      if (target === undefined) throw chartError(folder, `symbolic link ${name} points to nothing.`);
      const inside = relative(root, target);
      if (inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside)) {
        throw chartError(folder, `symbolic link ${name} points outside the chart folder (to ${target}); copy that content into the chart instead.`);
      }
      info = await stat(target);
      absolute = target;
    }
    if (info.isDirectory()) {
      if (name !== '' && ignore.ignores(name, true)) return;
      const real = await realpath(absolute);
      if (ancestors.has(real)) throw chartError(folder, `symbolic link ${name} loops back to a folder that contains it.`);
      const entries = (await readdir(absolute)).sort(byCodePoint);
      for (const entry of entries) await visit(join(absolute, entry), name ? `${name}/${entry}` : entry, new Set([...ancestors, real]));
      return;
    }
    if (ignore.ignores(name, false)) return;
    if (!info.isFile()) throw chartError(folder, `${name} is not a regular file (a socket, pipe or device); add it to .helmignore.`);
    if (info.size > MAX_FILE_BYTES) {
      throw chartError(folder, `${name} is ${(info.size / 1024 / 1024).toFixed(1)} MiB, over Helm's 5 MiB limit for a chart file; keep it out of the chart or list it in .helmignore.`);
    }
    const data = await readFile(absolute);
    files.push({ name, data: data.subarray(0, 3).equals(UTF8_BOM) ? data.subarray(3) : data });
  };

  await visit(root, '', new Set());
  return files;
}

/**
 * Sorts files into a chart (helm `LoadFiles`), checks its metadata and loads its subcharts.
 * `where` names the chart in errors; `requireV2` is set for the chart being pushed.
 */
export function loadChartFiles(files: ChartFile[], where: string, requireV2: boolean): Chart {
  const chartYaml = files.find((file) => file.name === 'Chart.yaml');
  if (!chartYaml) throw chartError(where, 'has no Chart.yaml; point chartPath at the folder that holds Chart.yaml, or at a packaged .tgz.');
  const metadata = parseChartYaml(chartYaml.data.toString('utf8'), `${where}/Chart.yaml`);
  validateMetadata(metadata, `${where}/Chart.yaml`, requireV2);
  const isV1 = metadata.apiVersion === 'v1';

  const chart: Chart = { metadata, templates: [], files: [], dependencies: [] };
  const subchartFiles = new Map<string, ChartFile[]>();
  for (const file of files) {
    const { name, data } = file;
    if (name === 'Chart.yaml') continue;
    if (name === 'Chart.lock') {
      parseYaml(data.toString('utf8'), `${where}/Chart.lock`);
      if (!isV1) chart.lock = data;
    } else if (name === 'values.yaml') {
      const values = parseYaml(data.toString('utf8'), `${where}/values.yaml`);
      if (values !== null && values !== undefined && !isPlainObject(values)) throw chartError(`${where}/values.yaml`, 'must be a YAML mapping of values.');
      chart.values = data;
    } else if (name === 'values.schema.json') {
      try {
        JSON.parse(data.toString('utf8'));
      } catch (error) {
        throw chartError(`${where}/values.schema.json`, `is not valid JSON (${(error as Error).message}).`);
      }
      chart.schema = data;
    } else if (name === 'requirements.yaml' || name === 'requirements.lock') {
      // Helm 2 dependency files: part of a v1 chart, dropped from a v2 one as Helm drops them.
      if (isV1) chart.files.push(file);
    } else if (name.startsWith('templates/')) chart.templates.push(file);
    else if (name.startsWith('charts/') && !name.endsWith('.prov')) {
      const [folder, ...rest] = name.slice('charts/'.length).split('/');
      subchartFiles.set(folder, [...(subchartFiles.get(folder) ?? []), { name: rest.join('/'), data }]);
    } else chart.files.push(file);
  }

  for (const [entry, members] of [...subchartFiles].sort(([a], [b]) => byCodePoint(a, b))) {
    // Helm skips charts/_foo and charts/.foo.
    if (entry.startsWith('_') || entry.startsWith('.')) continue;
    const label = `${where}/charts/${entry}`;
    let subchart: Chart;
    if (entry.endsWith('.tgz') && members.length === 1 && members[0].name === '') {
      subchart = loadChartFiles(chartFilesFromArchive(members[0].data, label), label, false);
    } else if (members.some((member) => member.name === '')) {
      throw chartError(label, 'is neither a chart folder nor a .tgz chart archive; remove it from charts/ or list it in .helmignore.');
    } else subchart = loadChartFiles(members, label, false);
    if (chart.dependencies.some((other) => other.metadata.name === subchart.metadata.name)) {
      throw chartError(label, `is a second copy of chart '${subchart.metadata.name}' in charts/; keep one.`);
    }
    chart.dependencies.push(subchart);
  }
  chart.dependencies.sort((a, b) => byCodePoint(a.metadata.name!, b.metadata.name!));
  chart.templates.sort((a, b) => byCodePoint(a.name, b.name));
  chart.files.sort((a, b) => byCodePoint(a.name, b.name));
  return chart;
}

/**
 * `helm package` refuses a chart whose Chart.yaml lists a dependency that charts/ does not hold
 * (action.CheckDependencies: by chart name, aliases aside).
 */
export function checkDependenciesVendored(chart: Chart, where: string): void {
  const missing = (chart.metadata.dependencies ?? []).filter((dependency) => !chart.dependencies.some((sub) => sub.metadata.name === dependency.name));
  if (missing.length > 0) {
    const names = missing.map((dependency) => dependency.name).join(', ');
    throw chartError(`${where}/Chart.yaml`, `lists dependencies with no chart in charts/: ${names}; run 'helm dependency build' before this step, or vendor them into charts/.`);
  }
}

/** Go's sort.Strings order (bytes), which is what Helm's walk and this packaging use. */
export function byCodePoint(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
