// Loading a chart the way helm pkg/chart/loader does (v3.22): the folder walked in name order with
// `.helmignore` applied, files sorted into their roles (Chart.yaml first, then the others in order,
// Helm 2's requirements.yaml decoded over Chart.yaml's fields), vendored subcharts in charts/
// loaded as charts of their own (folders or .tgz archives). Everything is checked before anything
// is pushed.
import { lstat, readdir, readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { posix } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { bufferSource, readTarEntries } from '../archive/tar.js';
import { ContentError } from '../errors.js';
import { HelmIgnore } from './helmignore.js';
import { chartError, checkValuesYaml, decodeLock, decodeMetadata, validateMetadata, type ChartLock, type ChartMetadata } from './metadata.js';
import { isHelmVersion } from './semver.js';

/** One file of a chart; `name` is slash-separated and relative to the chart root. */
export interface ChartFile {
  name: string;
  data: Buffer;
}

/** A loaded chart, split as Helm's `chart.Chart` is. */
export interface Chart {
  /** Validated, with text fields sanitised as Helm sanitises them. */
  metadata: ChartMetadata;
  /** From Chart.lock or requirements.lock; Helm writes it back as Chart.lock for apiVersion v2. */
  lock?: ChartLock;
  values?: Buffer;
  schema?: Buffer;
  /** templates/…, in load order. */
  templates: ChartFile[];
  /** Every other file (README, crds/…, a v1 chart's requirements files …), in load order. */
  files: ChartFile[];
  /** Vendored subcharts from charts/, sorted by folder or archive name. */
  dependencies: Chart[];
}

/** helm pkg/chart/loader: the largest file and the largest chart Helm will load. */
const MAX_FILE_BYTES = 5 * 1024 * 1024;
const MAX_CHART_BYTES = 100 * 1024 * 1024;

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

function withoutBom(data: Buffer): Buffer {
  return data.subarray(0, 3).equals(UTF8_BOM) ? data.subarray(3) : data;
}

/**
 * Reads a chart folder. `.helmignore` decides first, as in Helm's walk: an ignored entry is
 * skipped whatever it is. Symbolic links are followed as Helm follows them, but only to targets
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
    let outside: string | undefined;
    if (info.isSymbolicLink()) {
      // Helm resolves every link before its ignore rules see it, so a dangling one fails even when ignored.
      const target = await realpath(absolute).catch(() => undefined);
      if (target === undefined) throw chartError(folder, `symbolic link ${name} points to nothing (or loops); remove it or fix its target.`);
      const inside = relative(root, target);
      if (inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside)) outside = target;
      info = await stat(target);
      absolute = target;
    }
    if (name !== '' && ignore.ignores(name, info.isDirectory())) return;
    if (outside !== undefined) {
      throw chartError(folder, `symbolic link ${name} points outside the chart folder (to ${outside}); copy that content into the chart, or list the link in .helmignore.`);
    }
    if (info.isDirectory()) {
      const real = await realpath(absolute);
      if (ancestors.has(real)) throw chartError(folder, `symbolic link ${name} loops back to a folder that contains it; remove it or list it in .helmignore.`);
      const entries = (await readdir(absolute)).sort(byCodePoint);
      for (const entry of entries) await visit(join(absolute, entry), name ? `${name}/${entry}` : entry, new Set([...ancestors, real]));
      return;
    }
    if (!info.isFile()) throw chartError(folder, `${name} is not a regular file (a socket, pipe or device); add it to .helmignore.`);
    if (info.size > MAX_FILE_BYTES) {
      throw chartError(folder, `${name} is ${(info.size / 1024 / 1024).toFixed(1)} MiB, over Helm's 5 MiB limit for a chart file; keep it out of the chart or list it in .helmignore.`);
    }
    files.push({ name, data: withoutBom(await readFile(absolute)) });
  };

  await visit(root, '', new Set());
  return files;
}

/**
 * A chart's files from its `.tgz`, checked as helm's LoadArchiveFiles checks them: the top folder
 * stripped, no absolute or escaping paths, Helm's size limits; folders skipped.
 */
export function chartFilesFromArchive(archive: Buffer, label: string): ChartFile[] {
  let tar: Buffer;
  try {
    tar = gunzipSync(archive, { maxOutputLength: MAX_CHART_BYTES + 1024 * 1024 });
  } catch (error) {
    throw new ContentError(`${label} is not a gzipped chart archive (${(error as Error).message}).`);
  }
  const files: ChartFile[] = [];
  let total = 0;
  for (const entry of readTarEntries(bufferSource(tar), label)) {
    if (entry.type === 'directory' || (entry.mode & 0o170000) === 0o040000) continue;
    // An archive made on Windows may use backslashes throughout.
    const delimiter = entry.name.includes('\\') ? '\\' : '/';
    const parts = entry.name.split(delimiter);
    const joined = parts.slice(1).join('/');
    if (joined.startsWith('/')) throw new ContentError(`${label} holds an absolute path (${entry.name}); Helm refuses such archives.`);
    const name = posix.normalize(joined).replace(/\/$/, '');
    if (name === '.' || name.startsWith('..')) throw new ContentError(`${label} holds a path outside its chart folder (${entry.name}); Helm refuses such archives.`);
    if (/^[a-zA-Z]:\//.test(name)) throw new ContentError(`${label} holds a drive-letter path (${entry.name}); Helm refuses such archives.`);
    if (parts[0] === 'Chart.yaml') throw new ContentError(`${label}: Chart.yaml must sit in a folder named after the chart, not at the top of the archive.`);
    if (entry.size > MAX_FILE_BYTES) throw new ContentError(`${label}: ${entry.name} is larger than Helm's 5 MiB limit for a chart file.`);
    total += entry.size;
    if (total > MAX_CHART_BYTES) throw new ContentError(`${label} is larger than Helm's 100 MiB limit for a chart, decompressed.`);
    files.push({ name, data: withoutBom(Buffer.from(tar.subarray(entry.dataOffset, entry.dataOffset + entry.size))) });
  }
  if (files.length === 0) throw new ContentError(`${label} holds no files.`);
  return files;
}

/** How versions are judged: Helm's rule (Masterminds/semver), or this task's for the chart it pushes. */
export type VersionRule = (version: string) => string | undefined;

export const helmVersionRule: VersionRule = (version) => (isHelmVersion(version) ? undefined : 'use a SemVer version such as 1.0.0.');

function utf8(data: Buffer, where: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    throw chartError(where, 'is not UTF-8 text; save it as UTF-8.');
  }
}

/**
 * Sorts files into a chart (helm `LoadFiles`), checks its metadata and loads its subcharts.
 * `where` names the chart in errors; `versionRule` judges the chart's own version (subcharts are
 * always judged by Helm's rule).
 */
export function loadChartFiles(files: ChartFile[], where: string, versionRule: VersionRule = helmVersionRule): Chart {
  let metadata: ChartMetadata | undefined;
  for (const file of files) {
    if (file.name !== 'Chart.yaml') continue;
    metadata = decodeMetadata(utf8(file.data, `${where}/Chart.yaml`), `${where}/Chart.yaml`, metadata);
    // Helm 2 accepted charts without an apiVersion; Helm reads them as v1.
    if (!metadata.apiVersion) metadata = { ...metadata, apiVersion: 'v1' };
  }

  const chart: Omit<Chart, 'metadata'> = { templates: [], files: [], dependencies: [] };
  const subchartFiles = new Map<string, ChartFile[]>();
  for (const file of files) {
    const { name, data } = file;
    const here = `${where}/${name}`;
    if (name === 'Chart.yaml') continue;
    if (name === 'Chart.lock' || name === 'requirements.lock') {
      chart.lock = decodeLock(utf8(data, here), here);
      if (name === 'requirements.lock' && metadata?.apiVersion === 'v1') chart.files.push(file);
    } else if (name === 'values.yaml') {
      checkValuesYaml(utf8(data, here), here);
      chart.values = data;
    } else if (name === 'values.schema.json') {
      chart.schema = data;
    } else if (name === 'requirements.yaml') {
      // Helm 2's dependency list, decoded over Chart.yaml's fields. A v1 chart keeps the file; a v2
      // chart's dependencies move into Chart.yaml.
      metadata = decodeMetadata(utf8(data, here), here, metadata ?? {});
      if (metadata.apiVersion === 'v1') chart.files.push(file);
    } else if (name.startsWith('templates/')) chart.templates.push(file);
    else if (name.startsWith('charts/') && posix.extname(name) !== '.prov') {
      const [entry, ...rest] = name.slice('charts/'.length).split('/');
      subchartFiles.set(entry, [...(subchartFiles.get(entry) ?? []), { name: rest.join('/'), data }]);
    } else chart.files.push(file);
  }

  if (!metadata) throw chartError(where, 'has no Chart.yaml; point chartPath at the folder that holds Chart.yaml, or at a packaged .tgz.');
  const validated = validateMetadata(metadata, `${where}/Chart.yaml`, versionRule);
  if (chart.schema) {
    try {
      JSON.parse(chart.schema.toString('utf8'));
    } catch (error) {
      throw chartError(`${where}/values.schema.json`, `Invalid JSON in values.schema.json (${(error as Error).message}); fix the schema or remove the file.`);
    }
  }

  const dependencies: Chart[] = [];
  for (const [entry, members] of [...subchartFiles].sort(([a], [b]) => byCodePoint(a, b))) {
    // Helm skips charts/_foo and charts/.foo.
    if (entry.startsWith('_') || entry.startsWith('.')) continue;
    const label = `${where}/charts/${entry}`;
    if (posix.extname(entry) === '.tgz') {
      if (members[0].name !== '') throw chartError(label, 'is a folder named like a chart archive; rename it or list it in .helmignore.');
      let archiveFiles: ChartFile[];
      try {
        archiveFiles = chartFilesFromArchive(members[0].data, label);
      } catch (error) {
        if (error instanceof ContentError) throw chartError(label, error.message.replace(`${label} `, '').replace(`${label}: `, ''));
        throw error;
      }
      dependencies.push(loadChartFiles(archiveFiles, label));
    } else {
      // Helm ignores a plain file directly in charts/ here, and then finds no Chart.yaml.
      const inside = members.filter((member) => member.name !== '');
      if (inside.length === 0) throw chartError(label, 'is neither a chart folder nor a .tgz chart archive; remove it from charts/ or list it in .helmignore.');
      dependencies.push(loadChartFiles(inside, label));
    }
  }
  return { ...chart, metadata: validated, dependencies };
}

/**
 * `helm package` refuses a chart whose dependencies (Chart.yaml's, or a v1 chart's
 * requirements.yaml) name a chart that charts/ does not hold (action.CheckDependencies: by chart
 * name, aliases aside).
 */
export function checkDependenciesVendored(chart: Chart, where: string): void {
  const missing = (chart.metadata.dependencies ?? []).filter((dependency) => !chart.dependencies.some((sub) => sub.metadata.name === dependency?.name));
  if (missing.length > 0) {
    const names = missing.map((dependency) => dependency?.name).join(', ');
    throw chartError(`${where}/Chart.yaml`, `lists dependencies with no chart in charts/: ${names}; run 'helm dependency build' before this step, or vendor them into charts/.`);
  }
}

/** Go's sort.Strings order (bytes), which is what Helm's walk and this packaging use. */
function byCodePoint(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
