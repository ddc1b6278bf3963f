// Typed Dockerfile instructions from the parser's raw lines, with the argument rules of BuildKit's
// frontend (moby/buildkit frontend/dockerfile/instructions): which instructions take JSON arrays,
// `KEY=value` pairs, whitespace-separated words or the whole rest of the line, and which `--flags`.
// Variables are not expanded here: that needs the build's state and happens when a stage is built.
import { DockerfileSyntaxError, parseDockerfile, parseHeredocWord, parseJsonArray, type Heredoc, type RawInstruction } from './parser.js';

export interface Located {
  /** 1-based lines in the Dockerfile. */
  line: number;
  endLine: number;
  /** The instruction as written (continuations joined). */
  original: string;
}

export interface KeyValue {
  key: string;
  value: string;
  /** Written as the old `KEY value` form. */
  legacy: boolean;
}

export interface ArgDefinition {
  key: string;
  /** Undefined for `ARG NAME` without a default. */
  value?: string;
}

/** Shell form commands are kept as one string; `json` says which form was written. */
export interface CommandLine {
  args: string[];
  json: boolean;
}

export interface CopySource {
  kind: 'path';
  path: string;
}

export interface InlineSource {
  kind: 'heredoc';
  /** The marker, which is also the file name at the destination. */
  name: string;
  content: string;
  expand: boolean;
}

export interface Healthcheck {
  test: string[];
  intervalNs?: number;
  timeoutNs?: number;
  startPeriodNs?: number;
  startIntervalNs?: number;
  retries?: number;
}

export type Instruction = Located &
  (
    | { kind: 'from'; image: string; stageName?: string; platform?: string }
    | { kind: 'arg'; args: ArgDefinition[] }
    | { kind: 'env'; pairs: KeyValue[] }
    | { kind: 'label'; pairs: KeyValue[] }
    | {
        kind: 'copy' | 'add';
        sources: CopySource[];
        inline: InlineSource[];
        dest: string;
        from?: string;
        chown?: string;
        chmod?: string;
        link: boolean;
        excludes: string[];
        parents: boolean;
        /** ADD options that only make sense for remote sources (checked when building). */
        remoteOptions: string[];
        /** ADD --unpack=false keeps a local archive as a file. */
        unpack?: boolean;
      }
    | { kind: 'workdir'; path: string }
    | { kind: 'user'; user: string }
    | { kind: 'expose'; ports: string[] }
    | { kind: 'cmd' | 'entrypoint'; command: CommandLine }
    | { kind: 'shell'; shell: string[] }
    | { kind: 'healthcheck'; healthcheck: Healthcheck }
    | { kind: 'volume'; volumes: string[] }
    | { kind: 'stopsignal'; signal: string }
    | { kind: 'maintainer'; maintainer: string }
    | { kind: 'run'; command: CommandLine }
    | { kind: 'onbuild'; expression: string }
  );

export type InstructionOf<K extends Instruction['kind']> = Extract<Instruction, { kind: K }>;

export interface Stage {
  /** FROM's instruction. */
  from: InstructionOf<'from'>;
  /** Lower-case name given with `AS`, if any. */
  name?: string;
  index: number;
  instructions: Exclude<Instruction, InstructionOf<'from'>>[];
}

export interface Dockerfile {
  /** ARGs before the first FROM (visible to FROM lines only). */
  metaArgs: InstructionOf<'arg'>[];
  stages: Stage[];
  escape: string;
}

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

/** Reads flags declared for an instruction; anything else is an error, as in BuildKit. */
class Flags {
  private readonly values = new Map<string, string[]>();

  constructor(
    raw: string[],
    declared: Record<string, 'bool' | 'string' | 'strings'>,
    keyword: string,
  ) {
    for (const word of raw) {
      if (word === '--') break;
      if (!word.startsWith('--')) throw new Error(`arg should start with -- : ${word}`);
      const equals = word.indexOf('=');
      const name = word.slice(2, equals === -1 ? undefined : equals);
      const value = equals === -1 ? undefined : word.slice(equals + 1);
      const type = declared[name];
      if (!type) throw new Error(`unknown flag: --${name} for ${keyword.toUpperCase()}`);
      if (this.values.has(name) && type !== 'strings') throw new Error(`duplicate flag specified: --${name}`);
      let parsed: string;
      if (type === 'bool') {
        if (value === '') throw new Error(`missing a value on flag: --${name}`);
        const lower = (value ?? 'true').toLowerCase();
        if (lower !== 'true' && lower !== 'false') throw new Error(`expecting boolean value for flag --${name}, not: ${value}`);
        parsed = lower;
      } else {
        if (value === undefined) throw new Error(`missing a value on flag: --${name}`);
        parsed = value;
      }
      this.values.set(name, [...(this.values.get(name) ?? []), parsed]);
    }
  }

  string(name: string): string | undefined {
    return this.values.get(name)?.[0];
  }

  strings(name: string): string[] {
    return this.values.get(name) ?? [];
  }

  bool(name: string): boolean | undefined {
    const value = this.values.get(name)?.[0];
    return value === undefined ? undefined : value === 'true';
  }

}

/**
 * Words separated by whitespace, with quotes and escapes kept for the expansion that follows
 * (ENV, LABEL and ARG arguments).
 */
function quotedWords(text: string, escape: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote = '';
  let blankOk = false;
  const characters = [...text];
  for (let index = 0; index < characters.length; index++) {
    const character = characters[index];
    if (!inWord && !quote) {
      if (/\s/.test(character)) continue;
      inWord = true;
    }
    // The escape character keeps itself and the next character (for the expansion to read), except
    // inside single quotes; a trailing one is dropped.
    if (character === escape && quote !== "'") {
      if (index + 1 < characters.length) word += character + characters[++index];
      continue;
    }
    if (quote) {
      if (character === quote) quote = '';
      word += character;
      continue;
    }
    if (/\s/.test(character)) {
      if (blankOk || word) words.push(word);
      word = '';
      blankOk = false;
      inWord = false;
      continue;
    }
    if (character === '"' || character === "'") {
      quote = character;
      blankOk = true;
    }
    word += character;
  }
  if (inWord || quote) {
    if (blankOk || word) words.push(word);
  }
  return words;
}

function keyValues(raw: RawInstruction, escape: string): KeyValue[] {
  const words = quotedWords(raw.rest, escape);
  const name = raw.keyword.toUpperCase();
  if (words.length === 0) throw new Error(`${name} requires at least one argument`);
  if (!words[0].includes('=')) {
    // The old `KEY value` form: the value is the rest of the line, spaces and all.
    const gap = /[\t\v\f\r ]+/.exec(raw.rest);
    if (!gap) throw new Error(`${name} must have two arguments`);
    return [{ key: raw.rest.slice(0, gap.index), value: raw.rest.slice(gap.index + gap[0].length), legacy: true }];
  }
  return words.map((word) => {
    const equals = word.indexOf('=');
    if (equals === -1) throw new Error(`Syntax error - can't find = in "${word}". Must be of the form: name=value`);
    const key = word.slice(0, equals);
    if (!key) throw new Error(`${name} names can not be blank`);
    return { key, value: word.slice(equals + 1), legacy: false };
  });
}

/** JSON array, or the rest of the line as one shell-form string. */
function commandLine(rest: string): CommandLine {
  const json = parseJsonArray(rest);
  if (json) return { args: json, json: true };
  return { args: rest ? [rest] : [], json: false };
}

/** JSON array, or words split on whitespace (ADD, COPY, VOLUME). */
function listArguments(rest: string): { words: string[]; json: boolean } {
  const json = parseJsonArray(rest);
  if (json) return { words: json, json: true };
  return { words: rest ? rest.split(/[\t\v\f\r ]+/) : [], json: false };
}

function durationNs(flag: string, value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  const match = /^((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/.exec(value);
  if (!match && value !== '0') throw new Error(`time: invalid duration "${value}"`);
  let total = 0;
  for (const [, amount, unit] of value.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) total += Number(amount) * units[unit];
  if (total !== 0 && total < 1e6) throw new Error(`Interval "${flag}" cannot be less than 1ms`);
  return total === 0 ? undefined : Math.round(total);
}

function exactlyOne(raw: RawInstruction): string {
  if (!raw.rest) throw new Error(`${raw.keyword.toUpperCase()} requires exactly one argument`);
  return raw.rest;
}

function healthcheck(raw: RawInstruction, flags: Flags): Healthcheck {
  const [type = '', ...restWords] = raw.rest.split(/\s+/);
  if (!type) throw new Error('HEALTHCHECK requires at least one argument');
  const upper = type.toUpperCase();
  const afterType = raw.rest.slice(type.length).replace(/^\s+/, '');
  if (upper === 'NONE') {
    if (restWords.filter(Boolean).length > 0) throw new Error('HEALTHCHECK NONE takes no arguments');
    return { test: ['NONE'] };
  }
  if (upper !== 'CMD') throw new Error(`Unknown type "${upper}" in HEALTHCHECK (try CMD)`);
  const command = commandLine(afterType);
  if (command.args.length === 0) throw new Error('Missing command after HEALTHCHECK CMD');
  const retries = flags.string('retries');
  let retryCount: number | undefined;
  if (retries !== undefined && retries !== '') {
    if (!/^[+-]?\d+$/.test(retries)) throw new Error(`strconv.ParseInt: parsing "${retries}": invalid syntax`);
    retryCount = Number(retries);
    if (retryCount < 0) throw new Error(`--retries cannot be negative (${retryCount})`);
  }
  return {
    test: [command.json ? 'CMD' : 'CMD-SHELL', ...command.args],
    intervalNs: durationNs('interval', flags.string('interval')),
    timeoutNs: durationNs('timeout', flags.string('timeout')),
    startPeriodNs: durationNs('start-period', flags.string('start-period')),
    startIntervalNs: durationNs('start-interval', flags.string('start-interval')),
    retries: retryCount,
  };
}

function copyOrAdd(raw: RawInstruction, flags: Flags): InstructionOf<'copy' | 'add'> {
  const kind = raw.keyword as 'copy' | 'add';
  const { words } = listArguments(raw.rest);
  if (words.length < 2) throw new Error(`${kind.toUpperCase()} requires at least two arguments, but only one was provided. Destination could not be determined`);
  const dest = words[words.length - 1];
  if (parseHeredocWord(dest)) throw new Error(`${kind.toUpperCase()} cannot accept a heredoc as a destination`);
  const heredocs = new Map<string, Heredoc>(raw.heredocs.map((heredoc) => [heredoc.name, heredoc]));
  const sources: CopySource[] = [];
  const inline: InlineSource[] = [];
  for (const word of words.slice(0, -1)) {
    const marker = parseHeredocWord(word);
    if (marker) {
      let content = heredocs.get(marker.name)?.content ?? '';
      if (marker.chomp) content = content.replace(/^\t+/gm, '');
      inline.push({ kind: 'heredoc', name: marker.name, content, expand: marker.expand });
    } else {
      sources.push({ kind: 'path', path: word });
    }
  }
  const remoteOptions = ['checksum', 'keep-git-dir'].filter((name) => flags.string(name) !== undefined || flags.bool(name) !== undefined);
  return {
    kind,
    line: raw.line,
    endLine: raw.endLine,
    original: raw.original,
    sources,
    inline,
    dest,
    from: kind === 'copy' ? flags.string('from') : undefined,
    chown: flags.string('chown') || undefined,
    chmod: flags.string('chmod') || undefined,
    link: flags.bool('link') ?? false,
    excludes: flags.strings('exclude'),
    parents: kind === 'copy' ? (flags.bool('parents') ?? false) : false,
    remoteOptions,
    unpack: kind === 'add' ? flags.bool('unpack') : undefined,
  };
}

const FLAGS: Record<string, Record<string, 'bool' | 'string' | 'strings'>> = {
  from: { platform: 'string' },
  copy: { chown: 'string', from: 'string', chmod: 'string', link: 'bool', exclude: 'strings', parents: 'bool' },
  add: { chown: 'string', chmod: 'string', link: 'bool', 'keep-git-dir': 'bool', checksum: 'string', unpack: 'bool', exclude: 'strings' },
  healthcheck: { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' },
  // RUN's flags are accepted here so that the instruction is refused for what it is, not for a flag.
  run: { mount: 'strings', network: 'string', security: 'string', device: 'strings' },
};

const KNOWN = new Set([
  'add', 'arg', 'cmd', 'copy', 'entrypoint', 'env', 'expose', 'from', 'healthcheck', 'label', 'maintainer', 'onbuild', 'run', 'shell', 'stopsignal', 'user', 'volume', 'workdir',
]);

/** One raw instruction as a typed one; errors carry the instruction's line. */
function toInstruction(raw: RawInstruction, escape: string): Instruction {
  try {
    return typed(raw, escape);
  } catch (error) {
    if (error instanceof DockerfileSyntaxError) throw error;
    throw new DockerfileSyntaxError(error instanceof Error ? error.message : String(error), raw.line);
  }
}

function typed(raw: RawInstruction, escape: string): Instruction {
  const location = { line: raw.line, endLine: raw.endLine, original: raw.original };
  if (!KNOWN.has(raw.keyword)) throw new Error(`unknown instruction: ${raw.written}`);
  // ARG and STOPSIGNAL ignore flags in BuildKit; every other instruction refuses undeclared ones.
  const flags = new Flags(raw.keyword === 'arg' || raw.keyword === 'stopsignal' ? [] : raw.flags, FLAGS[raw.keyword] ?? {}, raw.keyword);
  switch (raw.keyword) {
    case 'from': {
      const words = raw.rest ? raw.rest.split(/[\t\v\f\r ]+/) : [];
      let stageName: string | undefined;
      if (words.length === 3 && words[1].toLowerCase() === 'as') {
        stageName = words[2].toLowerCase();
        if (!STAGE_NAME.test(stageName)) throw new Error(`invalid name for build stage: "${words[2]}", name can't start with a number or contain symbols`);
      } else if (words.length !== 1) {
        throw new Error('FROM requires either one or three arguments');
      }
      return { kind: 'from', ...location, image: words[0], stageName, platform: flags.string('platform') };
    }
    case 'arg': {
      const words = quotedWords(raw.rest, escape);
      if (words.length === 0) throw new Error('ARG requires at least one argument');
      return {
        kind: 'arg',
        ...location,
        args: words.map((word) => {
          const equals = word.indexOf('=');
          if (equals === -1) return { key: word };
          if (equals === 0) throw new Error('ARG names can not be blank');
          return { key: word.slice(0, equals), value: word.slice(equals + 1) };
        }),
      };
    }
    case 'env':
    case 'label':
      return { kind: raw.keyword, ...location, pairs: keyValues(raw, escape) };
    case 'copy':
    case 'add':
      return copyOrAdd(raw, flags);
    case 'workdir':
      return { kind: 'workdir', ...location, path: exactlyOne(raw) };
    case 'user':
      return { kind: 'user', ...location, user: exactlyOne(raw) };
    case 'maintainer':
      return { kind: 'maintainer', ...location, maintainer: exactlyOne(raw) };
    case 'stopsignal':
      return { kind: 'stopsignal', ...location, signal: exactlyOne(raw) };
    case 'expose': {
      const ports = raw.rest ? raw.rest.split(/[\t\v\f\r ]+/) : [];
      if (ports.length === 0) throw new Error('EXPOSE requires at least one argument');
      return { kind: 'expose', ...location, ports: [...ports].sort() };
    }
    case 'cmd':
    case 'entrypoint':
    case 'run':
      return { kind: raw.keyword, ...location, command: commandLine(raw.rest) };
    case 'shell': {
      const command = commandLine(raw.rest);
      if (command.args.length === 0) throw new Error('SHELL requires at least one argument');
      if (!command.json) throw new Error(`SHELL requires the arguments to be in JSON form`);
      return { kind: 'shell', ...location, shell: command.args };
    }
    case 'healthcheck':
      return { kind: 'healthcheck', ...location, healthcheck: healthcheck(raw, flags) };
    case 'volume': {
      const { words } = listArguments(raw.rest);
      if (words.length === 0) throw new Error('VOLUME requires at least one argument');
      const volumes = words.map((volume) => volume.trim());
      if (volumes.some((volume) => volume === '')) throw new Error('VOLUME specified can not be an empty string');
      return { kind: 'volume', ...location, volumes };
    }
    case 'onbuild': {
      if (!raw.rest) throw new Error('ONBUILD requires at least one argument');
      const trigger = raw.rest.split(/\s+/)[0].toUpperCase();
      if (trigger === 'ONBUILD') throw new Error('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
      if (trigger === 'MAINTAINER' || trigger === 'FROM') throw new Error(`${trigger} isn't allowed as an ONBUILD trigger`);
      return { kind: 'onbuild', ...location, expression: raw.original.replace(/^\s*ONBUILD\s*/i, '') };
    }
    default:
      throw new Error(`unknown instruction: ${raw.written}`);
  }
}

/** Parses a Dockerfile into its meta ARGs and stages. */
export function readDockerfile(text: string): Dockerfile {
  const parsed = parseDockerfile(text);
  const metaArgs: InstructionOf<'arg'>[] = [];
  const stages: Stage[] = [];
  for (const raw of parsed.instructions) {
    const instruction = toInstruction(raw, parsed.escape);
    if (instruction.kind === 'from') {
      stages.push({ from: instruction, name: instruction.stageName, index: stages.length, instructions: [] });
    } else if (stages.length === 0) {
      if (instruction.kind !== 'arg') throw new DockerfileSyntaxError(`no build stage in current context: ${raw.written.toUpperCase()} comes before the first FROM`, raw.line);
      metaArgs.push(instruction);
    } else {
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  if (stages.length === 0) throw new DockerfileSyntaxError('dockerfile contains no stages to build', 1);
  return { metaArgs, stages, escape: parsed.escape };
}
