// The line formats of the build task's inputs, read into typed values: build arguments and labels
// (`NAME=value`), platforms (`os/arch[/variant]`), build secrets (`id=VARIABLE_NAME`) and the
// time stamp every reproducible build uses (SOURCE_DATE_EPOCH).
import { InputError } from '../errors.js';
import { formatPlatform, parsePlatform, type Platform } from './imageConfig.js';

function lines(text: string): { line: string; number: number }[] {
  return text
    .split(/\r?\n/)
    .map((line, index) => ({ line: line.trim(), number: index + 1 }))
    .filter(({ line }) => line !== '');
}

/** `NAME=value` lines; the value is everything after the first `=`, spaces included. */
function pairs(text: string, input: string, what: string, validName: RegExp): Map<string, string> {
  const values = new Map<string, string>();
  for (const { line, number } of lines(text)) {
    const equals = line.indexOf('=');
    const name = equals === -1 ? '' : line.slice(0, equals).trim();
    if (equals === -1 || !validName.test(name)) {
      throw new InputError(input, `line ${number} ('${line.length > 40 ? `${line.slice(0, 40)}…` : line}') is not ${what}; write one ${what} per line.`);
    }
    values.set(name, line.slice(equals + 1));
  }
  return values;
}

/** `buildArgs`: Docker's build-arg names are anything without `=` or whitespace. */
export function parseBuildArgs(text: string, input = 'buildArgs'): Map<string, string> {
  return pairs(text, input, 'NAME=value', /^[^\s=]+$/);
}

export function parseLabels(text: string, input = 'labels'): Record<string, string> {
  return Object.fromEntries(pairs(text, input, 'key=value', /^[^\s=]+$/));
}

/** `platforms`: separated by commas or new lines, each once. */
export function parsePlatforms(text: string, input = 'platforms'): Platform[] {
  const platforms = new Map<string, Platform>();
  for (const part of text.split(/[\s,]+/).filter(Boolean)) {
    const platform = parsePlatform(part, input);
    platforms.set(formatPlatform(platform), platform);
  }
  if (platforms.size === 0) throw new InputError(input, 'no platform given; write for example linux/amd64.');
  return [...platforms.values()];
}

export interface BuildSecret {
  id: string;
  /** The environment variable holding the value. */
  variable: string;
}

/** `buildSecrets`: `id=VARIABLE_NAME` lines (BuildKit's `--secret id=…,env=…`). */
export function parseBuildSecrets(text: string, input = 'buildSecrets'): BuildSecret[] {
  const secrets: BuildSecret[] = [];
  for (const [id, variable] of pairs(text, input, 'id=VARIABLE_NAME', /^[A-Za-z0-9._-]+$/)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(variable.trim())) throw new InputError(input, `'${variable}' (for secret ${id}) is not an environment variable name.`);
    secrets.push({ id, variable: variable.trim() });
  }
  return secrets;
}

/**
 * SOURCE_DATE_EPOCH from the build arguments or, as a pipeline variable, the environment
 * (reproducible-builds.org's convention, which BuildKit follows). Undefined when unset.
 */
export function sourceDateEpoch(buildArgs: ReadonlyMap<string, string>, environment: NodeJS.ProcessEnv): number | undefined {
  const fromArgs = buildArgs.get('SOURCE_DATE_EPOCH');
  const value = (fromArgs ?? environment.SOURCE_DATE_EPOCH ?? '').trim();
  if (value === '') return undefined;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    const problem = fromArgs !== undefined ? `SOURCE_DATE_EPOCH='${value}' is not` : `the SOURCE_DATE_EPOCH pipeline variable ('${value}') is not`;
    throw new InputError('buildArgs', `${problem} a number of seconds since 1970.`);
  }
  return Number(value);
}
