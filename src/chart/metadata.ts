// Chart.yaml as Helm reads and writes it (helm pkg/chart Metadata, Dependency; v3.22). Helm parses
// Chart.yaml through sigs.k8s.io/yaml (YAML 1.1, then JSON into Go structs), so a field of the
// wrong type is an error, unknown fields are dropped, and every string is sanitised the way
// Metadata.Validate does. The archive's Chart.yaml and the OCI config are written from this model.
import { parse, stringify } from 'yaml';
import { InputError } from '../errors.js';
import { isSemVer } from './semver.js';

export interface ChartMaintainer {
  name?: string;
  email?: string;
  url?: string;
}

export interface ChartDependency {
  name: string;
  version?: string;
  repository: string;
  condition?: string;
  tags?: string[];
  enabled?: boolean;
  'import-values'?: unknown[];
  alias?: string;
}

/** Field order is Go's struct order: the OCI config JSON lists them in this order, as `helm push` does. */
export interface ChartMetadata {
  name?: string;
  home?: string;
  sources?: string[];
  version?: string;
  description?: string;
  keywords?: string[];
  maintainers?: ChartMaintainer[];
  icon?: string;
  apiVersion?: string;
  condition?: string;
  tags?: string;
  appVersion?: string;
  deprecated?: boolean;
  annotations?: Record<string, string>;
  kubeVersion?: string;
  dependencies?: ChartDependency[];
  type?: string;
}

const METADATA_FIELDS = ['name', 'home', 'sources', 'version', 'description', 'keywords', 'maintainers', 'icon', 'apiVersion', 'condition', 'tags', 'appVersion', 'deprecated', 'annotations', 'kubeVersion', 'dependencies', 'type'] as const;
const STRING_FIELDS = new Set(['name', 'home', 'version', 'description', 'icon', 'apiVersion', 'condition', 'tags', 'appVersion', 'kubeVersion', 'type']);
const DEPENDENCY_FIELDS = ['name', 'version', 'repository', 'condition', 'tags', 'enabled', 'import-values', 'alias'] as const;
// Go's `omitempty` drops these when empty; `name` and `repository` of a dependency are always written.
const DEPENDENCY_ALWAYS = new Set(['name', 'repository']);
const ALIAS = /^[a-zA-Z0-9_-]+$/;

/** A problem with the chart's content, reported against the `chartPath` input. */
export function chartError(where: string, problem: string): InputError {
  return new InputError('chartPath', `${where}: ${problem}`);
}

/** Parses YAML as Helm's Go parser would (YAML 1.1: `yes` is a boolean), one line per error. */
export function parseYaml(text: string, where: string): unknown {
  try {
    return parse(text, { version: '1.1', prettyErrors: true, uniqueKeys: false });
  } catch (error) {
    const problem = (error as Error).message.split('\n')[0].replace(/:$/, '');
    throw chartError(where, `invalid YAML: ${problem}.`);
  }
}

/** Reads Chart.yaml into the metadata model; types are checked, values are not (see validateMetadata). */
export function parseChartYaml(text: string, where: string): ChartMetadata {
  const document = parseYaml(text, where) ?? {};
  if (!isPlainObject(document)) throw chartError(where, 'is not a YAML mapping of chart fields (name, version, apiVersion …).');
  const fail = (field: string, expected: string) => chartError(where, `'${field}' must be ${expected}${field === 'version' || field === 'appVersion' ? `; quote it, for example ${field}: "1.0.0"` : ''}.`);
  const metadata: Record<string, unknown> = {};
  for (const field of METADATA_FIELDS) {
    const value = document[field];
    if (value === undefined || value === null) continue;
    if (STRING_FIELDS.has(field)) {
      if (typeof value !== 'string') throw fail(field, 'a string');
      metadata[field] = sanitize(value);
    } else if (field === 'sources' || field === 'keywords') metadata[field] = stringList(value, () => fail(field, 'a list of strings'));
    else if (field === 'deprecated') {
      if (typeof value !== 'boolean') throw fail(field, 'true or false');
      metadata[field] = value;
    } else if (field === 'annotations') {
      if (!isPlainObject(value) || !Object.values(value).every((entry) => typeof entry === 'string')) throw fail(field, 'a mapping of strings to strings');
      metadata[field] = value;
    } else if (field === 'maintainers') {
      if (!Array.isArray(value)) throw fail(field, 'a list');
      metadata[field] = value.map((maintainer) => {
        if (!isPlainObject(maintainer)) throw chartError(where, 'maintainers must not contain empty or null entries.');
        return pick(maintainer, ['name', 'email', 'url'], () => fail('maintainers', 'a list of name/email/url strings'));
      });
    } else if (field === 'dependencies') {
      if (!Array.isArray(value)) throw fail(field, 'a list');
      metadata[field] = value.map((dependency) => parseDependency(dependency, where));
    }
  }
  return metadata;
}

function parseDependency(value: unknown, where: string): ChartDependency {
  if (!isPlainObject(value)) throw chartError(where, 'dependencies must not contain empty or null entries.');
  const fail = (field: string, expected: string) => chartError(where, `dependency field '${field}' must be ${expected}.`);
  const dependency: Record<string, unknown> = {};
  for (const field of DEPENDENCY_FIELDS) {
    const entry = value[field];
    if (entry === undefined || entry === null) {
      if (DEPENDENCY_ALWAYS.has(field)) dependency[field] = '';
      continue;
    }
    if (field === 'tags') dependency[field] = stringList(entry, () => fail(field, 'a list of strings'));
    else if (field === 'enabled') {
      if (typeof entry !== 'boolean') throw fail(field, 'true or false');
      dependency[field] = entry;
    } else if (field === 'import-values') {
      if (!Array.isArray(entry)) throw fail(field, 'a list');
      dependency[field] = entry;
    } else {
      if (typeof entry !== 'string') throw fail(field, 'a string');
      dependency[field] = field === 'alias' ? entry : sanitize(entry);
    }
  }
  return dependency as unknown as ChartDependency;
}

/**
 * Helm's Metadata.Validate, with one deliberate difference: versions must be full SemVer 2.
 * `requireV2` is set for the chart being pushed; vendored subcharts may still be apiVersion v1.
 */
export function validateMetadata(metadata: ChartMetadata, where: string, requireV2: boolean): void {
  if (!metadata.apiVersion) throw chartError(where, "has no apiVersion; add 'apiVersion: v2'.");
  if (metadata.apiVersion === 'v1' && requireV2) {
    throw chartError(where, "says apiVersion v1, a Helm 2 chart; set 'apiVersion: v2' and move the dependencies of requirements.yaml into Chart.yaml.");
  }
  if (metadata.apiVersion !== 'v1' && metadata.apiVersion !== 'v2') throw chartError(where, `apiVersion '${metadata.apiVersion}' is not v2.`);
  if (!metadata.name) throw chartError(where, "has no name; add 'name: <chart name>'.");
  if (metadata.name === '.' || metadata.name === '..' || /[/\\]/.test(metadata.name)) throw chartError(where, `name '${metadata.name}' is not a valid chart name.`);
  if (!metadata.version) throw chartError(where, "has no version; add a SemVer 2 version such as 'version: 1.0.0'.");
  if (!isSemVer(metadata.version)) throw chartError(where, `version '${metadata.version}' is not SemVer 2; use MAJOR.MINOR.PATCH with optional -prerelease and +build, for example 1.4.0 or 1.4.0-rc.1+20260101.`);
  if (metadata.type !== undefined && metadata.type !== '' && metadata.type !== 'application' && metadata.type !== 'library') {
    throw chartError(where, `type '${metadata.type}' must be application or library.`);
  }
  const keys = new Set<string>();
  for (const dependency of metadata.dependencies ?? []) {
    if (dependency.alias && !ALIAS.test(dependency.alias)) throw chartError(where, `dependency '${dependency.name}' has disallowed characters in its alias '${dependency.alias}'.`);
    const key = dependency.alias || dependency.name;
    if (keys.has(key)) throw chartError(where, `more than one dependency is named or aliased '${key}'.`);
    keys.add(key);
  }
}

/** Chart.yaml as `helm package` writes it into the archive: the model with keys sorted (sigs.k8s.io/yaml). */
export function renderChartYaml(metadata: ChartMetadata): string {
  const written = metadata.apiVersion === 'v1' ? { ...metadata, dependencies: undefined } : metadata;
  return stringify(omitEmpty(written), { version: '1.1', sortMapEntries: true, lineWidth: 0, indentSeq: false, singleQuote: true });
}

/**
 * The OCI config of a Helm chart: Go's `json.Marshal(metadata)` — struct field order, `omitempty`,
 * map keys sorted, and `<`, `>`, `&`, U+2028, U+2029 escaped as Go escapes them.
 */
export function renderConfigJson(metadata: ChartMetadata): string {
  const ordered: Record<string, unknown> = {};
  for (const field of METADATA_FIELDS) {
    const value = omitEmpty({ [field]: metadata[field] })[field];
    if (value === undefined) continue;
    if (field === 'annotations') ordered[field] = sortKeys(value as Record<string, string>);
    else if (field === 'dependencies') ordered[field] = (value as ChartDependency[]).map((dependency) => orderDependency(dependency));
    else if (field === 'maintainers') ordered[field] = (value as ChartMaintainer[]).map((maintainer) => omitEmpty({ name: maintainer.name, email: maintainer.email, url: maintainer.url }));
    else ordered[field] = value;
  }
  return goJsonEscape(JSON.stringify(ordered));
}

function orderDependency(dependency: ChartDependency): Record<string, unknown> {
  const ordered: Record<string, unknown> = {};
  for (const field of DEPENDENCY_FIELDS) {
    const value = dependency[field];
    if (DEPENDENCY_ALWAYS.has(field)) ordered[field] = value ?? '';
    else if (!isEmpty(value)) ordered[field] = value;
  }
  return ordered;
}

export function goJsonEscape(json: string): string {
  const escapes: Record<string, string> = { '<': '\\u003c', '>': '\\u003e', '&': '\\u0026', '\u2028': '\\u2028', '\u2029': '\\u2029' };
  // Outside strings JSON has none of these characters, so a global replace only touches string content.
  return json.replace(/[<>&\u2028\u2029]/g, (char) => escapes[char]);
}

/** Go's `unicode.IsSpace` becomes a plain space and what `unicode.IsPrint` rejects is dropped. */
function sanitize(text: string): string {
  return text.replace(/[\t\n\v\f\r\u0085\u00a0\p{Zs}\u2028\u2029]/gu, ' ').replace(/[^\p{L}\p{M}\p{N}\p{P}\p{S} ]/gu, '');
}

function stringList(value: unknown, fail: () => Error): string[] {
  if (!Array.isArray(value) || !value.every((entry) => typeof entry === 'string')) throw fail();
  return value.map((entry: string) => sanitize(entry));
}

function pick(value: Record<string, unknown>, fields: string[], fail: () => Error): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const field of fields) {
    const entry = value[field];
    if (entry === undefined || entry === null) continue;
    if (typeof entry !== 'string') throw fail();
    picked[field] = sanitize(entry);
  }
  return picked;
}

function isEmpty(value: unknown): boolean {
  return value === undefined || value === null || value === '' || value === false || (Array.isArray(value) && value.length === 0) || (isPlainObject(value) && Object.keys(value).length === 0);
}

function omitEmpty<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => !isEmpty(entry))) as Partial<T>;
}

function sortKeys(value: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
