// The Dockerfile's lines as BuildKit's parser reads them (moby/buildkit frontend/dockerfile/parser):
// parser directives at the top (`# escape=`, `# syntax=`, `# check=`), comments, line
// continuations with the escape character, and heredocs for ADD, COPY and RUN. The result is one
// entry per instruction with its keyword, `--flags`, arguments and source lines.
import { expandWords, NO_VARIABLES } from './lexer.js';

export interface Heredoc {
  /** The marker word (`EOF` in `<<EOF`). */
  name: string;
  /** The lines up to the marker, with their line endings. */
  content: string;
  /** `<<-`: leading tabs are removed from every line. */
  chomp: boolean;
  /** The marker was unquoted, so variables in the content are expanded. */
  expand: boolean;
}

export interface RawInstruction {
  /** Lower-case keyword: `from`, `copy` … (unknown keywords are kept, for the error). */
  keyword: string;
  /** The keyword as written, for messages. */
  written: string;
  /** `--name=value` words between the keyword and the arguments, quotes removed. */
  flags: string[];
  /** The rest of the line after the flags, continuation lines joined. */
  rest: string;
  heredocs: Heredoc[];
  /** 1-based first and last line in the Dockerfile. */
  line: number;
  endLine: number;
  /** The instruction as written on its (joined) line, trimmed: what history records. */
  original: string;
}

export interface ParsedDockerfile {
  instructions: RawInstruction[];
  escape: string;
}

/** A Dockerfile that cannot be read; `line` is 1-based. */
export class DockerfileSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
  }
}

const DIRECTIVE = /^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);
const HEREDOC_KEYWORDS = new Set(['add', 'copy', 'run']);
const HEREDOC_WORD = /^(\d*)<<(-?)\s*([^<]*)$/;
const WHITESPACE = /[\t\v\f\r ]+/;

/** Reads parser directives; they end at the first line that is not one. */
class Directives {
  escape = '\\';
  private done = false;
  private readonly seen = new Set<string>();

  /** True when `line` was a directive (it is then also a comment). */
  read(line: string, lineNumber: number): boolean {
    if (this.done) return false;
    if (!line.startsWith('#')) {
      this.done = true;
      return false;
    }
    const match = DIRECTIVE.exec(line.slice(1).replace(/^\s+/, ''));
    const name = match?.[1].toLowerCase();
    if (!match || !name || !KNOWN_DIRECTIVES.has(name)) {
      this.done = true;
      return false;
    }
    if (this.seen.has(name)) throw new DockerfileSyntaxError(`only one ${name} parser directive can be used`, lineNumber);
    this.seen.add(name);
    if (name === 'escape') {
      if (match[2] !== '`' && match[2] !== '\\') throw new DockerfileSyntaxError(`invalid escape token '${match[2]}' does not match \` or \\`, lineNumber);
      this.escape = match[2];
    }
    return true;
  }

  /** The escape character ends a line (possibly followed by blanks), unless it is itself escaped. */
  continues(line: string): { text: string; continued: boolean } {
    const escape = this.escape;
    const trimmed = line.replace(/[ \t]*$/, '');
    if (!trimmed.endsWith(escape)) return { text: line, continued: false };
    const body = trimmed.slice(0, -escape.length);
    // An escape token preceded by another escape token is literal (BuildKit's regular expression
    // requires a different character, or nothing, before it).
    if (body.length > 0 && body.endsWith(escape)) return { text: line, continued: false };
    return { text: body, continued: true };
  }
}

function isComment(line: string): boolean {
  return /^\s*#/.test(line);
}

/** Splits `--flag=value` words off the front of an instruction's arguments. */
function splitFlags(text: string, escape: string): { flags: string[]; rest: string } {
  const flags: string[] = [];
  let position = 0;
  for (;;) {
    while (position < text.length && /\s/.test(text[position])) position++;
    if (!text.startsWith('--', position)) return { flags, rest: text.slice(position) };
    let word = '';
    let quote = '';
    let quoted = false;
    for (; position < text.length; position++) {
      const character = text[position];
      if (!quote && /\s/.test(character)) break;
      if (!quote && (character === '"' || character === "'")) {
        quote = character;
        quoted = true;
        continue;
      }
      if (quote && character === quote) {
        quote = '';
        continue;
      }
      if (character === escape) {
        if (position + 1 === text.length) continue;
        position++;
        word += text[position];
        continue;
      }
      word += character;
    }
    if (word === '--') return { flags, rest: text.slice(position) };
    if (word || quoted) flags.push(word);
    if (position >= text.length) return { flags, rest: '' };
  }
}

/** The heredoc markers on an instruction line (`<<EOF`, `<<-"END"`, `3<<X`). */
function heredocMarkers(line: string): Omit<Heredoc, 'content'>[] {
  let words: string[];
  try {
    words = expandWords(line, NO_VARIABLES, { rawQuotes: true, rawEscapes: true, keepUnset: true });
  } catch {
    return [];
  }
  const markers: Omit<Heredoc, 'content'>[] = [];
  for (const word of words) {
    const marker = parseHeredocWord(word);
    if (marker) markers.push(marker);
  }
  return markers;
}

/** A word that is a heredoc marker, or undefined. Quotes in the marker turn expansion off. */
export function parseHeredocWord(word: string): Omit<Heredoc, 'content'> | undefined {
  const match = HEREDOC_WORD.exec(word);
  if (!match || !match[3]) return undefined;
  const plain = expandWords(match[3], NO_VARIABLES, { keepUnset: true });
  if (plain.length !== 1) return undefined;
  const raw = expandWords(match[3], NO_VARIABLES, { keepUnset: true, rawQuotes: true });
  const quotes = (text: string) => (text.match(/['"]/g) ?? []).length;
  return { name: plain[0], chomp: match[2] === '-', expand: quotes(plain[0]) === quotes(raw[0]) };
}

/** Splits the file into lines, each keeping its line ending (heredoc content keeps them). */
function splitLines(text: string): string[] {
  const lines: string[] = [...(text.match(/[^\n]*\n|[^\n]+$/g) ?? [])];
  if (lines.length > 0) lines[0] = lines[0].replace(/^\uFEFF/, '');
  return lines;
}

function stripNewline(line: string): string {
  return line.replace(/[\r\n]+$/, '');
}

export function parseDockerfile(text: string): ParsedDockerfile {
  const lines = splitLines(text);
  const directives = new Directives();
  const instructions: RawInstruction[] = [];
  let index = 0;
  while (index < lines.length) {
    const startLine = index + 1;
    let current = stripNewline(lines[index]).replace(/^\s+/, '');
    if (directives.read(current, startLine)) {
      index++;
      continue;
    }
    index++;
    if (isComment(current)) current = '';
    let { text: joined, continued } = directives.continues(current);
    if (!continued && joined === '') continue;
    while (continued && index < lines.length) {
      const raw = stripNewline(lines[index]);
      index++;
      if (isComment(raw)) continue;
      // An empty continuation line is skipped (BuildKit warns that this will become an error).
      if (raw.trim() === '') continue;
      const next = directives.continues(raw);
      joined += next.text;
      continued = next.continued;
    }
    const trimmed = joined.trim();
    const [written, ...restParts] = trimmed.split(WHITESPACE);
    const afterKeyword = restParts.length > 0 ? trimmed.slice(written.length).replace(/^[\t\v\f\r ]+/, '') : '';
    const keyword = written.toLowerCase();
    const { flags, rest } = splitFlags(afterKeyword, directives.escape);
    const instruction: RawInstruction = { keyword, written, flags, rest: rest.trim(), heredocs: [], line: startLine, endLine: index, original: trimmed };
    if (mayHaveHeredoc(instruction) && trimmed.includes('<<')) {
      for (const marker of heredocMarkers(trimmed)) {
        let content = '';
        let terminated = false;
        while (index < lines.length) {
          const raw = lines[index];
          index++;
          let candidate = stripNewline(raw);
          if (marker.chomp) candidate = candidate.replace(/^\t+/, '');
          if (candidate === marker.name) {
            terminated = true;
            break;
          }
          content += raw;
        }
        if (!terminated) throw new DockerfileSyntaxError('unterminated heredoc', startLine);
        instruction.heredocs.push({ ...marker, content });
      }
      instruction.endLine = index;
    }
    instructions.push(instruction);
  }
  if (instructions.length === 0) throw new DockerfileSyntaxError('file with no instructions', Math.max(1, lines.length));
  return { instructions, escape: directives.escape };
}

/** ADD, COPY and RUN (also as an ONBUILD trigger) may carry heredocs, unless written as JSON. */
function mayHaveHeredoc(instruction: RawInstruction): boolean {
  let keyword = instruction.keyword;
  let rest = instruction.rest;
  if (keyword === 'onbuild') {
    const [inner, ...tail] = rest.trim().split(WHITESPACE);
    keyword = (inner ?? '').toLowerCase();
    rest = tail.join(' ');
  }
  if (!HEREDOC_KEYWORDS.has(keyword)) return false;
  try {
    return parseJsonArray(rest) === undefined;
  } catch {
    // A JSON array of non-strings: reported when the instruction's arguments are read.
    return false;
  }
}

/**
 * The JSON array form (`["a", "b"]`). Undefined when the text is not a JSON array; an array with
 * anything but strings is an error, as in BuildKit.
 */
export function parseJsonArray(text: string): string[] | undefined {
  const trimmed = text.replace(/^\s+/, '');
  if (!trimmed.startsWith('[')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value)) return undefined;
  if (!value.every((item) => typeof item === 'string')) throw new Error('when using JSON array syntax, arrays must be comprised of strings only');
  return value;
}
