// Shell-style word processing of Dockerfile arguments, with the rules of BuildKit's dockerfile
// frontend (moby/buildkit frontend/dockerfile/shell): single and double quotes, the escape
// character, `$VAR`, `${VAR}` and the modifiers `:-` `-` `:+` `+` `:?` `?` `#` `##` `%` `%%`
// `/` `//`. No command substitution, no globbing: a Dockerfile is not run by a shell here.

/** Variables visible to an expansion; undefined means unset (which differs from empty). */
export interface VariableLookup {
  get(name: string): string | undefined;
}

export interface LexerOptions {
  /** The Dockerfile's escape character: `\` (default) or `` ` `` (the `# escape=` directive). */
  escape?: string;
  /** Keep quote characters in the result (used to find heredoc markers). */
  rawQuotes?: boolean;
  /** Keep escape characters in the result. */
  rawEscapes?: boolean;
  /** Leave `$NAME` of unset variables as written instead of expanding them to nothing. */
  keepUnset?: boolean;
  /** Treat quotes as ordinary characters (heredoc bodies). */
  ignoreQuotes?: boolean;
}

/** A syntax error in a word; the caller adds the Dockerfile location. */
export class ExpansionError extends Error {}

const EOF = '';

/** The special parameters of POSIX sh (`$@`, `$?` …): one character, never a longer name. */
const SPECIAL_PARAMETERS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);

class Scanner {
  private position = 0;
  private readonly characters: string[];

  constructor(text: string) {
    // Code points, so a non-BMP character is one step as Go's scanner reads runes.
    this.characters = [...text];
  }

  peek(): string {
    return this.characters[this.position] ?? EOF;
  }

  next(): string {
    return this.characters[this.position++] ?? EOF;
  }
}

/** Collects the words of an expansion: whitespace splits words unless it came from quotes or escapes. */
class Words {
  readonly words: string[] = [];
  private buffer = '';
  private inWord = false;

  add(character: string): void {
    if (isSpace(character)) {
      if (this.inWord && this.buffer.length > 0) {
        this.words.push(this.buffer);
        this.buffer = '';
        this.inWord = false;
      }
    } else {
      this.addRaw(character);
    }
  }

  addRaw(text: string): void {
    this.buffer += text;
    this.inWord = true;
  }

  addExpanded(text: string): void {
    for (const character of text) this.add(character);
  }

  finish(): string[] {
    if (this.buffer.length > 0) {
      this.words.push(this.buffer);
      this.buffer = '';
      this.inWord = false;
    }
    return this.words;
  }
}

function isSpace(character: string): boolean {
  return /^\s$/u.test(character);
}

function isNameCharacter(character: string): boolean {
  return /^[\p{L}\p{Nd}_]$/u.test(character);
}

/** One expansion run over one word. */
class Expansion {
  private readonly scanner: Scanner;
  private rawEscapes: boolean;
  private readonly escape: string;

  constructor(
    word: string,
    private readonly variables: VariableLookup,
    private readonly options: LexerOptions,
  ) {
    this.scanner = new Scanner(word);
    this.escape = options.escape ?? '\\';
    this.rawEscapes = options.rawEscapes ?? false;
  }

  run(): { text: string; words: string[] } {
    return this.until(EOF, this.rawEscapes);
  }

  /** Processes up to `stop` (consumed) or the end of the word. */
  private until(stop: string, rawEscapes: boolean): { text: string; words: string[] } {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      let text = '';
      const words = new Words();
      while (this.scanner.peek() !== EOF) {
        const character = this.scanner.peek();
        if (stop !== EOF && character === stop) {
          this.scanner.next();
          return { text, words: words.finish() };
        }
        if (character === '$') {
          const value = this.dollar();
          text += value;
          words.addExpanded(value);
        } else if (character === '<') {
          const value = this.possibleHeredoc();
          text += value;
          words.addRaw(value);
        } else if (!this.options.ignoreQuotes && (character === "'" || character === '"')) {
          const value = character === "'" ? this.singleQuoted() : this.doubleQuoted();
          text += value;
          words.addRaw(value);
        } else {
          let next = this.scanner.next();
          if (next === this.escape) {
            if (this.rawEscapes) {
              words.addRaw(next);
              text += next;
            }
            next = this.scanner.next();
            if (next === EOF) break;
            words.addRaw(next);
          } else {
            words.add(next);
          }
          text += next;
        }
      }
      if (stop !== EOF) throw new ExpansionError(`unexpected end of statement while looking for matching ${stop}`);
      return { text, words: words.finish() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  /** Everything between single quotes is literal; a single quote cannot be escaped inside. */
  private singleQuoted(): string {
    const raw = this.options.rawQuotes ?? false;
    let text = raw ? this.scanner.next() : (this.scanner.next(), '');
    for (;;) {
      const character = this.scanner.next();
      if (character === EOF) throw new ExpansionError('unexpected end of statement while looking for matching single-quote');
      if (character === "'") return raw ? text + character : text;
      text += character;
    }
  }

  /** Double quotes keep everything but `$` expansions; the escape character quotes only `"`, `$` and itself. */
  private doubleQuoted(): string {
    const raw = this.options.rawQuotes ?? false;
    let text = raw ? this.scanner.next() : (this.scanner.next(), '');
    for (;;) {
      const peeked = this.scanner.peek();
      if (peeked === EOF) throw new ExpansionError('unexpected end of statement while looking for matching double-quote');
      if (peeked === '"') {
        const character = this.scanner.next();
        return raw ? text + character : text;
      }
      if (peeked === '$') {
        text += this.dollar();
        continue;
      }
      let character = this.scanner.next();
      if (character === this.escape) {
        if (this.rawEscapes) text += character;
        const following = this.scanner.peek();
        if (following === EOF) continue;
        if (following === '"' || following === '$' || following === this.escape) character = this.scanner.next();
      }
      text += character;
    }
  }

  private possibleHeredoc(): string {
    this.scanner.next();
    if (this.scanner.peek() !== '<') return '<';
    this.scanner.next();
    let spaces = '';
    while ([' ', '\t', '\r'].includes(this.scanner.peek())) spaces += this.scanner.next();
    return `<<${spaces}`;
  }

  private name(): string {
    let name = '';
    while (this.scanner.peek() !== EOF) {
      const character = this.scanner.peek();
      if (name === '' && /^\p{Nd}$/u.test(character)) {
        while (/^\p{Nd}$/u.test(this.scanner.peek())) name += this.scanner.next();
        return name;
      }
      if (name === '' && SPECIAL_PARAMETERS.has(character)) return this.scanner.next();
      if (!isNameCharacter(character)) break;
      name += this.scanner.next();
    }
    return name;
  }

  private lookup(name: string): string | undefined {
    return this.variables.get(name);
  }

  private dollar(): string {
    this.scanner.next();
    if (this.scanner.peek() !== '{') {
      const name = this.name();
      if (name === '') return '$';
      const value = this.lookup(name);
      if (value === undefined && this.options.keepUnset) return `$${name}`;
      return value ?? '';
    }
    this.scanner.next();
    const first = this.scanner.peek();
    if (first === EOF) throw new ExpansionError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new ExpansionError('syntax error: bad substitution');
    const name = this.name();
    let modifier = this.scanner.next();
    if (modifier === EOF) throw new ExpansionError("syntax error: missing '}'");
    let written = modifier;
    if (modifier === '}') {
      const value = this.lookup(name);
      if (value === undefined && this.options.keepUnset) return `\${${name}}`;
      return value ?? '';
    }
    if (modifier === '/') return this.replacement(name);
    let nullIsUnset = false;
    if (modifier === ':') {
      nullIsUnset = true;
      modifier = this.scanner.next();
      written += modifier;
    }
    if (!['+', '-', '?', '#', '%'].includes(modifier)) throw new ExpansionError(`unsupported modifier (${written}) in substitution`);
    const patternModifier = modifier === '#' || modifier === '%';
    if (nullIsUnset && patternModifier) throw new ExpansionError(`unsupported modifier (${written}) in substitution`);
    let word: string;
    try {
      word = this.until('}', patternModifier).text;
    } catch (error) {
      if (this.scanner.peek() === EOF) throw new ExpansionError("syntax error: missing '}'");
      throw error;
    }
    const value = this.lookup(name);
    if (value === undefined && this.options.keepUnset) return `\${${name}${written}${word}}`;
    const absent = value === undefined || (nullIsUnset && value === '');
    switch (modifier) {
      case '-':
        return absent ? word : (value ?? '');
      case '+':
        return absent ? '' : word;
      case '?':
        if (value === undefined) throw new ExpansionError(`${name}: ${word || 'is not allowed to be unset'}`);
        if (nullIsUnset && value === '') throw new ExpansionError(`${name}: ${word || 'is not allowed to be empty'}`);
        return value;
      default: {
        const greedy = word.startsWith(modifier);
        const pattern = greedy ? word.slice(1) : word;
        return modifier === '%' ? trimSuffix(pattern, value ?? '', greedy) : trimPrefix(pattern, value ?? '', greedy);
      }
    }
  }

  /** `${NAME/pattern/replacement}` and `${NAME//pattern/replacement}`. */
  private replacement(name: string): string {
    const all = this.scanner.peek() === '/';
    if (all) this.scanner.next();
    const part = (stop: string, missing: string) => {
      try {
        return this.until(stop, true).text;
      } catch (error) {
        if (this.scanner.peek() === EOF) throw new ExpansionError(missing);
        throw error;
      }
    };
    const pattern = part('/', "syntax error: missing '/' in ${}");
    const replacement = part('}', "syntax error: missing '}'");
    const value = this.lookup(name);
    if (value === undefined && this.options.keepUnset) return `\${${name}/${pattern}/${replacement}}`;
    const expression = shellPatternToRegex(pattern, true, false, all ? 'g' : '');
    // The replacement is a Go regexp template: `$$` is a dollar and `$name` names a group, of which
    // an escaped shell pattern has none.
    const literal = replacement.replace(/\$(\$|\{[^}]*\}|[A-Za-z0-9_]+)/g, (_match, what: string) => (what === '$' ? '$' : ''));
    return (value ?? '').replace(expression, () => literal);
  }
}

/**
 * A shell wildcard pattern (`*` any run, `?` one character, `\` escapes) as a regular expression,
 * without bracket expressions, as BuildKit converts them for `${VAR#…}` and `${VAR/…}`.
 */
function shellPatternToRegex(pattern: string, greedy: boolean, anchored: boolean, flags = ''): RegExp {
  const characters = [...pattern];
  let source = anchored ? '^' : '';
  for (let index = 0; index < characters.length; index++) {
    const character = characters[index];
    if (character === '*') {
      source += greedy ? '.*' : '.*?';
    } else if (character === '?') {
      source += '.';
    } else if (character === '\\') {
      const next = characters[index + 1];
      // `}` and `/` are escaped only to get past the ${} parser; the escape is not part of the pattern.
      if (next === '}' || next === '/') continue;
      if (next !== '*' && next !== '?' && next !== '\\') throw new ExpansionError(`invalid pattern (${pattern}) in substitution: invalid escape '\\${next ?? ''}'`);
      source += `\\${next}`;
      index++;
    } else {
      source += /[[\]{}.+()|^$/]/.test(character) ? `\\${character}` : character;
    }
  }
  return new RegExp(source, flags);
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const match = shellPatternToRegex(pattern, greedy, true).exec(value);
  return match ? value.slice(match[0].length) : value;
}

/** Reverses a pattern keeping each escape before the character it escapes. */
function reversePattern(pattern: string): string {
  const characters = [...pattern];
  const reversed: string[] = [];
  for (let index = 0; index < characters.length; ) {
    if (characters[index] === '\\' && index !== characters.length - 1) {
      reversed.unshift(characters[index], characters[index + 1]);
      index += 2;
    } else {
      reversed.unshift(characters[index]);
      index++;
    }
  }
  return reversed.join('');
}

function reverse(text: string): string {
  return [...text].reverse().join('');
}

/** The shortest (or longest) suffix match, found as a prefix match on the reversed strings. */
function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  return reverse(trimPrefix(reversePattern(pattern), reverse(value), greedy));
}

/** Expands one word (quotes removed, variables substituted), keeping the spaces within it. */
export function expandWord(word: string, variables: VariableLookup, options: LexerOptions = {}): string {
  return new Expansion(word, variables, options).run().text;
}

/** Expands and then splits into words on unquoted whitespace. */
export function expandWords(word: string, variables: VariableLookup, options: LexerOptions = {}): string[] {
  return new Expansion(word, variables, options).run().words;
}

export const NO_VARIABLES: VariableLookup = { get: () => undefined };
