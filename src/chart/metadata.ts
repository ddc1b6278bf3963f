// Chart.yaml, Chart.lock and the Helm 2 requirements files as Helm reads and writes them (helm
// pkg/chart Metadata, Dependency and Lock; v3.22). Helm decodes them with sigs.k8s.io/yaml: YAML
// 1.1 into generic values, numbers and booleans turned into text where a field is a string
// (`appVersion: 1.10` becomes "1.1"), then encoding/json into the Go structs (field names matched
// without regard to case, a file decoded over an earlier one merging into it, a value of the wrong
// type an error). It writes them with json.Marshal and go-yaml. The archive's Chart.yaml and
// Chart.lock and the OCI config are all written from this model.
import { InputError } from '../errors.js';
import { formatGoFloat, formatGoJsonNumber, GoYamlError, parseGoYaml, stringifyGoYaml, type GoValue, type JsonValue } from './goYaml.js';

export interface ChartMaintainer {
  name?: string;
  email?: string;
  url?: string;
}

export interface ChartDependency {
  name?: string;
  version?: string;
  repository?: string;
  condition?: string;
  tags?: string[];
  enabled?: boolean;
  'import-values'?: JsonValue[];
  alias?: string;
}

/** Field order is Go's struct order: json.Marshal writes them in this order, as `helm push` does. */
export interface ChartMetadata {
  name?: string;
  home?: string;
  sources?: string[];
  version?: string;
  description?: string;
  keywords?: string[];
  maintainers?: (ChartMaintainer | null)[];
  icon?: string;
  apiVersion?: string;
  condition?: string;
  tags?: string;
  appVersion?: string;
  deprecated?: boolean;
  annotations?: Record<string, string>;
  kubeVersion?: string;
  dependencies?: (ChartDependency | null)[];
  type?: string;
}

export interface ChartLock {
  /** RFC 3339 with nanoseconds, as Go's time.Time marshals; the zero time when absent. */
  generated: string;
  digest: string;
  dependencies: (ChartDependency | null)[] | null;
}

// ---------------------------------------------------------------------------------------------
// The Go types, described for decoding and encoding.

type GoType =
  | { kind: 'string' }
  | { kind: 'bool' }
  | { kind: 'any' }
  | { kind: 'time' }
  | { kind: 'slice'; element: GoType }
  | { kind: 'map'; element: GoType }
  | { kind: 'struct'; name: string; fields: [string, GoType, Encoding][]; pointer: boolean };

/** How json.Marshal writes a field: `omitempty` or always. */
type Encoding = 'omitempty' | 'always';

const STRING: GoType = { kind: 'string' };
const STRINGS: GoType = { kind: 'slice', element: STRING };
const MAINTAINER: GoType = {
  kind: 'struct',
  name: 'Maintainer',
  pointer: true,
  fields: [
    ['name', STRING, 'omitempty'],
    ['email', STRING, 'omitempty'],
    ['url', STRING, 'omitempty'],
  ],
};
const DEPENDENCY: GoType = {
  kind: 'struct',
  name: 'Dependency',
  pointer: true,
  fields: [
    ['name', STRING, 'always'],
    ['version', STRING, 'omitempty'],
    ['repository', STRING, 'always'],
    ['condition', STRING, 'omitempty'],
    ['tags', STRINGS, 'omitempty'],
    ['enabled', { kind: 'bool' }, 'omitempty'],
    ['import-values', { kind: 'slice', element: { kind: 'any' } }, 'omitempty'],
    ['alias', STRING, 'omitempty'],
  ],
};
const METADATA: GoType = {
  kind: 'struct',
  name: 'Metadata',
  pointer: false,
  fields: [
    ['name', STRING, 'omitempty'],
    ['home', STRING, 'omitempty'],
    ['sources', STRINGS, 'omitempty'],
    ['version', STRING, 'omitempty'],
    ['description', STRING, 'omitempty'],
    ['keywords', STRINGS, 'omitempty'],
    ['maintainers', { kind: 'slice', element: MAINTAINER }, 'omitempty'],
    ['icon', STRING, 'omitempty'],
    ['apiVersion', STRING, 'omitempty'],
    ['condition', STRING, 'omitempty'],
    ['tags', STRING, 'omitempty'],
    ['appVersion', STRING, 'omitempty'],
    ['deprecated', { kind: 'bool' }, 'omitempty'],
    ['annotations', { kind: 'map', element: STRING }, 'omitempty'],
    ['kubeVersion', STRING, 'omitempty'],
    ['dependencies', { kind: 'slice', element: DEPENDENCY }, 'omitempty'],
    ['type', STRING, 'omitempty'],
  ],
};
const LOCK: GoType = {
  kind: 'struct',
  name: 'Lock',
  pointer: false,
  fields: [
    ['generated', { kind: 'time' }, 'always'],
    ['digest', STRING, 'always'],
    ['dependencies', { kind: 'slice', element: DEPENDENCY }, 'always'],
  ],
};
const VALUES: GoType = { kind: 'map', element: { kind: 'any' } };

/** A Go zero time, as time.Time marshals it. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

/** A problem with the chart's content, reported against the `chartPath` input. */
export function chartError(where: string, problem: string): InputError {
  return new InputError('chartPath', `${where}: ${problem}`);
}

class DecodeError extends Error {}

type Json = JsonValue;

/**
 * sigs.k8s.io/yaml's YAML-to-JSON step (convertToJSONableObject, then json.Marshal): keys become
 * strings, numbers and booleans become text where the Go field is a string, and NaN or an infinity
 * anywhere else is an error. Numbers come out as float64, which is what json.Unmarshal makes of them.
 */
function toJson(value: GoValue, type: GoType | undefined): Json {
  if (value instanceof Map) {
    const object: Record<string, Json> = {};
    for (const [key, entry] of value) {
      const name = keyText(key);
      object[name] = toJson(entry, fieldType(type, name));
    }
    return object;
  }
  if (Array.isArray(value)) return value.map((entry) => toJson(entry, type?.kind === 'slice' ? type.element : undefined));
  if (type?.kind === 'string' && (typeof value === 'bigint' || typeof value === 'number' || typeof value === 'boolean')) {
    return typeof value === 'number' ? formatGoFloat(value, 32) : String(value);
  }
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'number') return Number(formatGoJsonNumber(value));
  return value;
}

function keyText(key: GoValue): string {
  if (typeof key === 'string') return key;
  if (typeof key === 'bigint' || typeof key === 'boolean') return String(key);
  if (typeof key === 'number') {
    const text = formatGoFloat(key, 32);
    return text === '+Inf' ? '.inf' : text === '-Inf' ? '-.inf' : text === 'NaN' ? '.nan' : text;
  }
  throw new DecodeError(`unsupported map key of type ${key === null ? '<nil>' : typeof key}`);
}

/** The type a key's value decodes into: a struct field (matched as encoding/json matches it) or a map element. */
function fieldType(type: GoType | undefined, key: string): GoType | undefined {
  if (type?.kind === 'map') return type.element;
  if (type?.kind !== 'struct') return undefined;
  return findField(type, key)?.[1];
}

function findField(type: Extract<GoType, { kind: 'struct' }>, key: string): [string, GoType, Encoding] | undefined {
  return type.fields.find(([name]) => name === key) ?? type.fields.find(([name]) => foldName(name) === foldName(key));
}

/** encoding/json's case folding of field names (ASCII, plus the long s and the Kelvin sign). */
function foldName(name: string): string {
  return name.replace(/[A-Z]/g, (char) => char.toLowerCase()).replaceAll('\u017f', 's').replaceAll('\u212a', 'k');
}

type GoData = Record<string, unknown>;

/**
 * encoding/json's Unmarshal into an existing value of `type`: objects merge into existing structs
 * and maps, arrays decode element by element into what is there, null leaves a plain value alone.
 */
function decodeInto(json: Json, type: GoType, existing: unknown, path: string): unknown {
  const wrong = (): never => {
    throw new DecodeError(`cannot unmarshal ${jsonKind(json)} into ${path} of type ${goTypeName(type)}`);
  };
  switch (type.kind) {
    case 'any':
      return json;
    case 'string':
      if (json === null) return existing;
      return typeof json === 'string' ? json : wrong();
    case 'bool':
      if (json === null) return existing;
      return typeof json === 'boolean' ? json : wrong();
    case 'time':
      if (json === null) return existing;
      if (typeof json !== 'string') throw new DecodeError(`${path}: Time.UnmarshalJSON: input is not a JSON string`);
      return parseRfc3339(json, path);
    case 'slice': {
      if (json === null) return undefined;
      if (!Array.isArray(json)) return wrong();
      const current = Array.isArray(existing) ? existing : [];
      return json.map((entry, index) => decodeInto(entry, type.element, current[index], `${path}[${index}]`));
    }
    case 'map': {
      if (json === null) return undefined;
      if (typeof json !== 'object' || Array.isArray(json)) return wrong();
      const map: Record<string, unknown> = { ...((existing as Record<string, unknown> | undefined) ?? {}) };
      for (const key of Object.keys(json).sort(byBytes)) map[key] = decodeInto(json[key], type.element, zeroOf(type.element), `${path}.${key}`);
      return map;
    }
    case 'struct': {
      if (json === null) return type.pointer ? null : existing;
      if (typeof json !== 'object' || Array.isArray(json)) return wrong();
      const struct: GoData = { ...((existing as GoData | null | undefined) ?? {}) };
      // json.Marshal wrote the object's keys sorted; a later key for the same field wins.
      for (const key of Object.keys(json).sort(byBytes)) {
        const field = findField(type, key);
        if (field) struct[field[0]] = decodeInto(json[key], field[1], struct[field[0]], `${type.name}.${field[0]}`);
      }
      return struct;
    }
  }
}

function zeroOf(type: GoType): unknown {
  return type.kind === 'string' ? '' : type.kind === 'bool' ? false : undefined;
}

function jsonKind(json: Json): string {
  if (json === null) return 'null';
  if (Array.isArray(json)) return 'array';
  if (typeof json === 'object') return 'object';
  return typeof json;
}

function goTypeName(type: GoType): string {
  switch (type.kind) {
    case 'slice':
      return `[]${goTypeName(type.element)}`;
    case 'map':
      return `map[string]${goTypeName(type.element)}`;
    case 'struct':
      return `${type.pointer ? '*' : ''}chart.${type.name}`;
    case 'any':
      return 'interface {}';
    case 'time':
      return 'time.Time';
    default:
      return type.kind;
  }
}

function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * Go's time.Time JSON decoding (RFC 3339: two-digit fields, a one- or two-digit hour, fraction
 * after `.` or `,`), returned as its JSON encoding (RFC 3339 with nanoseconds, zeros trimmed).
 */
function parseRfc3339(text: string, path: string): string {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{1,2}):(\d{2}):(\d{2})(?:[.,](\d+))?(Z|([-+])(\d{2}):(\d{2}))$/.exec(text);
  const fail = () => new DecodeError(`${path}: cannot parse "${text}" as an RFC 3339 time`);
  if (!match) throw fail();
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  if (month < 1 || month > 12 || day < 1 || day > days || hour > 23 || minute > 59 || second > 59) throw fail();
  if (match[9] && (Number(match[10]) > 24 || Number(match[11]) > 60)) throw fail();
  const two = (value: number) => String(value).padStart(2, '0');
  const fraction = (match[7] ?? '').slice(0, 9).replace(/0+$/, '');
  const offsetMinutes = match[9] ? (Number(match[10]) * 60 + Number(match[11])) * (match[9] === '-' ? -1 : 1) : 0;
  const zone = offsetMinutes === 0 ? 'Z' : `${match[9]}${match[10]}:${match[11]}`;
  return `${match[1]}-${match[2]}-${match[3]}T${two(hour)}:${match[5]}:${match[6]}${fraction ? `.${fraction}` : ''}${zone}`;
}

// ---------------------------------------------------------------------------------------------
// Reading.

/** The YAML of a chart file as sigs.k8s.io/yaml hands it to encoding/json; errors name `where`. */
function readYamlAsJson(text: string, where: string, type: GoType): Json {
  checkYamlCharacters(text, where);
  try {
    return toJson(parseGoYaml(text), type);
  } catch (error) {
    if (error instanceof GoYamlError || error instanceof DecodeError) throw chartError(where, `invalid YAML: ${error.message}.`);
    throw error;
  }
}

/** go-yaml reads only UTF-8 and refuses control characters other than tab and line breaks. */
function checkYamlCharacters(text: string, where: string): void {
  const bad = /[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u.exec(text);
  if (bad) throw chartError(where, `invalid YAML: control character U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')} is not allowed; remove it.`);
}

function decodeFile<T>(text: string, where: string, type: GoType, existing: T): T {
  const json = readYamlAsJson(text, where, type);
  try {
    return decodeInto(json, type, existing, type.kind === 'struct' ? type.name : 'value') as T;
  } catch (error) {
    if (error instanceof DecodeError) throw chartError(where, `${error.message}; ${fixFor(error.message, type)}`);
    throw error;
  }
}

function fixFor(message: string, type: GoType): string {
  if (type === VALUES) return 'values.yaml must be a mapping of value names to values.';
  if (/Time/.test(message)) return "regenerate the lock file with 'helm dependency update'.";
  if (/of type string$/.test(message)) return 'write the value as text.';
  if (/of type bool$/.test(message)) return 'write true or false, unquoted.';
  return 'give the field the form Helm documents for it.';
}

/**
 * Decodes Chart.yaml (or requirements.yaml, which Helm decodes over it) into `existing`, the way
 * helm's loader does with yaml.Unmarshal(data, c.Metadata).
 */
export function decodeMetadata(text: string, where: string, existing: ChartMetadata = {}): ChartMetadata {
  return decodeFile(text, where, METADATA, existing);
}

/**
 * Chart.lock or requirements.lock, decoded into a fresh Lock as helm's loader does; an empty file
 * leaves no lock at all (helm decodes it into the pointer, which null clears).
 */
export function decodeLock(text: string, where: string): ChartLock | undefined {
  const lock = decodeFile<Partial<ChartLock> | null>(text, where, { ...LOCK, pointer: true } as GoType, {});
  if (!lock) return undefined;
  return { generated: lock.generated ?? ZERO_TIME, digest: lock.digest ?? '', dependencies: lock.dependencies ?? null };
}

/** values.yaml must decode into `map[string]interface{}` (or be empty), as helm's loader requires. */
export function checkValuesYaml(text: string, where: string): void {
  decodeFile<unknown>(text, where, VALUES, undefined);
}

// ---------------------------------------------------------------------------------------------
// Validation: helm's Metadata.Validate, messages in its words plus what to do.

/** Go's `unicode.IsSpace` becomes a plain space and what `unicode.IsPrint` rejects is dropped. */
function sanitize(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  return text.replace(/[\t\n\v\f\r\u0085\u00a0\p{Zs}\u2028\u2029]/gu, ' ').replace(/[^\p{L}\p{M}\p{N}\p{P}\p{S} ]/gu, '');
}

const ALIAS = /^[a-zA-Z0-9_-]+$/;

/**
 * helm's Metadata.Validate: sanitises the text fields in place, then checks them in helm's order.
 * `checkVersion` decides what counts as a valid version (Helm's own rule is Masterminds/semver's).
 */
export function validateMetadata(metadata: ChartMetadata, where: string, checkVersion: (version: string) => string | undefined): ChartMetadata {
  const m: ChartMetadata = { ...metadata };
  for (const field of ['name', 'description', 'home', 'icon', 'condition', 'tags', 'appVersion', 'kubeVersion'] as const) m[field] = sanitize(m[field]);
  if (m.sources) m.sources = m.sources.map((source) => sanitize(source)!);
  if (m.keywords) m.keywords = m.keywords.map((keyword) => sanitize(keyword)!);
  const fail = (helmSays: string, todo: string) => chartError(where, `${helmSays}; ${todo}`);
  if (!m.apiVersion) throw fail('chart.metadata.apiVersion is required', "add 'apiVersion: v2'.");
  if (!m.name) throw fail('chart.metadata.name is required', "add 'name: <chart name>'.");
  if (m.name === '.' || m.name === '..') throw fail(`chart.metadata.name "${m.name}" is not allowed`, "give the chart a name, for example 'name: web'.");
  // filepath.Base(name) must be the name itself.
  if (m.name.includes('/') && m.name !== '/') throw fail(`chart.metadata.name "${m.name}" is invalid`, "a chart name cannot contain '/'.");
  if (!m.version) throw fail('chart.metadata.version is required', "add a SemVer 2 version such as 'version: 1.0.0'.");
  const versionProblem = checkVersion(m.version);
  if (versionProblem) throw fail(`chart.metadata.version "${m.version}" is invalid`, versionProblem);
  if (m.type && m.type !== 'application' && m.type !== 'library') throw fail('chart.metadata.type must be application or library', `'${m.type}' is neither.`);
  if (m.maintainers) {
    m.maintainers = m.maintainers.map((maintainer) => {
      if (!maintainer) throw fail('maintainers must not contain empty or null nodes', 'remove the empty entry.');
      return { name: sanitize(maintainer.name), email: sanitize(maintainer.email), url: sanitize(maintainer.url) };
    });
  }
  if (m.dependencies) {
    const keys = new Set<string>();
    m.dependencies = m.dependencies.map((dependency) => {
      if (!dependency) throw fail('dependencies must not contain empty or null nodes', 'remove the empty entry.');
      const clean: ChartDependency = {
        ...dependency,
        name: sanitize(dependency.name),
        version: sanitize(dependency.version),
        repository: sanitize(dependency.repository),
        condition: sanitize(dependency.condition),
        tags: dependency.tags?.map((tag) => sanitize(tag)!),
      };
      if (clean.alias && !ALIAS.test(clean.alias)) {
        throw fail(`dependency "${clean.name ?? ''}" has disallowed characters in the alias`, 'use letters, digits, - and _ only.');
      }
      const key = clean.alias || clean.name || '';
      if (keys.has(key)) throw fail(`more than one dependency with name or alias "${key}"`, 'give each an alias of its own.');
      keys.add(key);
      return clean;
    });
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// Writing.

/** json.Marshal of a value of `type`, as a JSON tree: omitempty applied, maps with sorted keys. */
function encode(value: unknown, type: GoType): Json {
  switch (type.kind) {
    case 'string':
      return (value as string | undefined) ?? '';
    case 'bool':
      return (value as boolean | undefined) ?? false;
    case 'time':
      return (value as string | undefined) ?? ZERO_TIME;
    case 'any':
      return sortJson(value as Json);
    case 'slice':
      return value === undefined || value === null ? null : (value as unknown[]).map((entry) => encode(entry, type.element));
    case 'map': {
      if (value === undefined || value === null) return null;
      const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => byBytes(a, b));
      return Object.fromEntries(entries.map(([key, entry]) => [key, encode(entry, type.element)]));
    }
    case 'struct': {
      if (value === null || value === undefined) return type.pointer ? null : {};
      const object: Record<string, Json> = {};
      for (const [name, fieldType, encoding] of type.fields) {
        const field = (value as GoData)[name];
        if (encoding === 'omitempty' && isEmpty(field)) continue;
        object[name] = encode(field, fieldType);
      }
      return object;
    }
  }
}

function isEmpty(value: unknown): boolean {
  return value === undefined || value === null || value === '' || value === false || (Array.isArray(value) && value.length === 0) || (typeof value === 'object' && Object.keys(value).length === 0);
}

function sortJson(value: Json): Json {
  if (Array.isArray(value)) return value.map(sortJson);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort(byBytes)
        .map((key) => [key, sortJson(value[key])]),
    );
  }
  return value;
}

/** Chart.yaml as `helm package` writes it: yaml.Marshal of the metadata, without a v1 chart's dependencies. */
export function renderChartYaml(metadata: ChartMetadata): string {
  const written = metadata.apiVersion === 'v1' ? { ...metadata, dependencies: undefined } : metadata;
  return stringifyGoYaml(encode(written, METADATA));
}

/** Chart.lock as `helm package` writes it (from Chart.lock or requirements.lock). */
export function renderLock(lock: ChartLock): string {
  return stringifyGoYaml(encode(lock, LOCK));
}

/**
 * The OCI config of a Helm chart: Go's `json.Marshal(metadata)`: struct field order, `omitempty`,
 * map keys sorted, and `<`, `>`, `&`, U+2028, U+2029 escaped as Go escapes them.
 */
export function renderConfigJson(metadata: ChartMetadata): string {
  return goJson(encode(metadata, METADATA));
}

/** JSON text as encoding/json writes it: Go's number format and HTML-safe escapes. */
function goJson(value: Json): string {
  if (typeof value === 'number') return formatGoJsonNumber(value);
  if (Array.isArray(value)) return `[${value.map(goJson).join(',')}]`;
  if (value !== null && typeof value === 'object') return `{${Object.entries(value).map(([key, entry]) => `${goJsonEscape(JSON.stringify(key))}:${goJson(entry)}`).join(',')}}`;
  return goJsonEscape(JSON.stringify(value));
}

export function goJsonEscape(json: string): string {
  const escapes: Record<string, string> = { '<': '\\u003c', '>': '\\u003e', '&': '\\u0026', '\u2028': '\\u2028', '\u2029': '\\u2029' };
  // Outside strings JSON has none of these characters, so a global replace only touches string content.
  return json.replace(/[<>&\u2028\u2029]/g, (char) => escapes[char]);
}
