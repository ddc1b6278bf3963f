// `.dockerignore` with Docker's rules (moby/patternmatcher and its ignorefile reader): one pattern
// a line, `#` comments, `!` exceptions, paths relative to the context with a leading `/` dropped,
// Go's filepath.Match wildcards (`*` and `?` stay within one path element, `[...]` classes) plus
// `**` for any number of elements. Later lines win: a file is excluded when the last pattern that
// matches it, or one of its parent folders, is not an exception.
import { posix } from 'node:path';

/** Go's filepath.Clean on a slash-separated path. */
function clean(path: string): string {
  if (path === '') return '.';
  const normalised = posix.normalize(path);
  return normalised.length > 1 ? normalised.replace(/\/+$/, '') : normalised;
}

/** The patterns of an ignore file, cleaned as Docker cleans them. */
export function readIgnoreFile(text: string): string[] {
  const patterns: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (const line of lines) {
    if (line.startsWith('#')) continue;
    let pattern = line.trim();
    if (!pattern) continue;
    const exception = pattern.startsWith('!');
    if (exception) pattern = pattern.slice(1).trim();
    if (pattern) {
      pattern = clean(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    patterns.push(exception ? `!${pattern}` : pattern);
  }
  return patterns;
}

type MatchKind = 'exact' | 'prefix' | 'suffix' | 'regexp';

/** Characters with a meaning in a regular expression but none in filepath.Match. */
const ESCAPED = new Set(['.', '+', '(', ')', '|', '{', '}', '$']);

class Pattern {
  readonly exception: boolean;
  readonly text: string;
  private readonly kind: MatchKind;
  private readonly expression?: RegExp;

  constructor(raw: string) {
    let pattern = clean(raw.trim());
    this.exception = pattern.startsWith('!');
    if (this.exception) {
      if (pattern.length === 1) throw new Error('illegal exclusion pattern: "!"');
      pattern = pattern.slice(1);
    }
    this.text = pattern;
    const { kind, source } = compile(pattern);
    this.kind = kind;
    if (kind === 'regexp') {
      try {
        this.expression = new RegExp(`${source}$`, 'u');
      } catch {
        throw new Error(`syntax error in pattern ${raw}`);
      }
    }
  }

  matches(path: string): boolean {
    switch (this.kind) {
      case 'exact':
        return path === this.text;
      case 'prefix':
        return path.startsWith(this.text.slice(0, -2));
      case 'suffix': {
        const suffix = this.text.slice(2);
        return path.endsWith(suffix) || (suffix.startsWith('/') && path === suffix.slice(1));
      }
      default:
        return this.expression!.test(path);
    }
  }

  /** The pattern without a trailing `/**` or `/*`: a prefix when it has no other wildcard. */
  withoutTrailingGlob(): string {
    return this.text.replace(/\/\*\*$/, '').replace(/\/\*$/, '');
  }
}

/** patternmatcher's compile: the kind of match and, for wildcards, the regular expression. */
function compile(pattern: string): { kind: MatchKind; source: string } {
  const characters = [...pattern];
  let source = '^';
  let kind: MatchKind = 'exact';
  for (let index = 0, step = 0; index < characters.length; index++, step++) {
    const character = characters[index];
    if (character === '*') {
      if (characters[index + 1] === '*') {
        index++;
        if (characters[index + 1] === '/') index++;
        if (index + 1 >= characters.length) {
          if (kind === 'exact') kind = 'prefix';
          else {
            source += '.*';
            kind = 'regexp';
          }
        } else {
          source += '(.*/)?';
          kind = 'regexp';
        }
        if (step === 0) kind = 'suffix';
      } else {
        source += '[^/]*';
        kind = 'regexp';
      }
    } else if (character === '?') {
      source += '[^/]';
      kind = 'regexp';
    } else if (ESCAPED.has(character)) {
      source += `\\${character}`;
    } else if (character === '\\') {
      if (index + 1 < characters.length) {
        index++;
        source += `\\${characters[index]}`;
        kind = 'regexp';
      } else {
        source += '\\\\';
      }
    } else if (character === '[' || character === ']') {
      source += character;
      kind = 'regexp';
    } else if (/[\\^*?[\]{}()|.+$/]/.test(character)) {
      source += `\\${character}`;
    } else {
      source += character;
    }
  }
  return { kind, source };
}

/** What a parent folder's evaluation tells its children (patternmatcher's MatchInfo). */
export type ParentMatches = readonly boolean[];

export class IgnoreMatcher {
  private readonly patterns: Pattern[];
  readonly hasExceptions: boolean;
  /** Exceptions are plain paths (no wildcards but a trailing `/**` or `/*`): excluded folders can be skipped unless one names something inside. */
  private readonly prefixExceptionsOnly: boolean;

  constructor(patterns: string[]) {
    this.patterns = patterns.filter((pattern) => pattern.trim() !== '').map((pattern) => new Pattern(pattern));
    this.hasExceptions = this.patterns.some((pattern) => pattern.exception);
    this.prefixExceptionsOnly = !this.patterns.some((pattern) => pattern.exception && /[*[\]?^\\]/.test(pattern.withoutTrailingGlob()));
  }

  get empty(): boolean {
    return this.patterns.length === 0;
  }

  /**
   * Whether `path` (relative, slash-separated) is excluded, given its parent folder's result
   * (patternmatcher's MatchesUsingParentResults): a pattern that matched the parent matches the
   * child too.
   */
  match(path: string, parent: ParentMatches = []): { excluded: boolean; matches: ParentMatches } {
    let excluded = false;
    const matches: boolean[] = [];
    this.patterns.forEach((pattern, index) => {
      let matched = parent[index] ?? false;
      if (!matched) {
        if (pattern.exception !== excluded) {
          matches.push(false);
          return;
        }
        matched = pattern.matches(path);
        if (!matched && parent.length === 0) {
          const parts = posix.dirname(path).split('/');
          if (parts[0] !== '.') {
            for (let depth = 1; depth <= parts.length && !matched; depth++) matched = pattern.matches(parts.slice(0, depth).join('/'));
          }
        }
      }
      matches.push(matched);
      if (matched) excluded = !pattern.exception;
    });
    return { excluded, matches };
  }

  /** Whether the walk must look inside an excluded folder for files an exception brings back. */
  mayIncludeInside(folder: string): boolean {
    if (!this.hasExceptions) return false;
    if (!this.prefixExceptionsOnly) return true;
    const prefix = `${folder}/`;
    return this.patterns.some((pattern) => pattern.exception && `${pattern.withoutTrailingGlob()}/`.startsWith(prefix));
  }
}
