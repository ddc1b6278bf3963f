// `.helmignore` with the rules of helm pkg/ignore (v3.22), which are not quite gitignore:
// - one pattern per line; blank lines and `#` comments skipped; `**` is refused;
// - patterns are Go `filepath.Match` globs (`*` and `?` stop at `/`, `[...]` with `^` negation);
// - no `/` in the pattern: matched against the base name only; with a `/`: against the whole path
//   relative to the chart; a leading `/` anchors to the chart root; a trailing `/` matches folders only;
// - the first matching rule wins. A `!rule` does not re-include anything: a path it does NOT match
//   is ignored on the spot, a path it matches goes on to the next rule;
// - `templates/.?*` is always appended, so dotfiles in templates/ never reach the chart.
import { InputError } from '../errors.js';

interface Rule {
  negate: boolean;
  directoryOnly: boolean;
  /** Tests a slash-separated path relative to the chart root. */
  matches(path: string): boolean;
}

export class HelmIgnore {
  private constructor(private readonly rules: Rule[]) {}

  /** Parses `.helmignore` text (may be empty) and appends Helm's default rule. */
  static parse(text: string, input = 'chartPath'): HelmIgnore {
    const rules: Rule[] = [];
    const lines = text.replace(/^\uFEFF/, '').split('\n');
    for (const [index, line] of [...lines, 'templates/.?*'].entries()) {
      const rule = parseRule(line.trim(), (problem) => new InputError(input, `.helmignore line ${index + 1}: ${problem}`));
      if (rule) rules.push(rule);
    }
    return new HelmIgnore(rules);
  }

  /** Whether `path` (relative, `/`-separated) is left out of the chart. */
  ignores(path: string, isDirectory: boolean): boolean {
    if (path === '' || path === '.' || path === './') return false;
    for (const rule of this.rules) {
      if (rule.negate) {
        if (rule.directoryOnly && !isDirectory) return true;
        if (!rule.matches(path)) return true;
        continue;
      }
      if (rule.directoryOnly && !isDirectory) continue;
      if (rule.matches(path)) return true;
    }
    return false;
  }
}

function parseRule(line: string, fail: (problem: string) => Error): Rule | undefined {
  if (line === '' || line.startsWith('#')) return undefined;
  if (line.includes('**')) throw fail(`'${line}' uses **, which Helm does not support; list the folders instead.`);
  let pattern = line;
  const negate = pattern.startsWith('!');
  if (negate) pattern = pattern.slice(1);
  const directoryOnly = pattern.endsWith('/');
  if (directoryOnly) pattern = pattern.slice(0, -1);
  let regex: RegExp;
  try {
    regex = globToRegExp(pattern.replace(/^\//, ''));
  } catch (error) {
    throw fail(`'${line}' is not a valid pattern (${(error as Error).message}).`);
  }
  const wholePath = pattern.includes('/');
  const matches = wholePath ? (path: string) => regex.test(path) : (path: string) => regex.test(path.slice(path.lastIndexOf('/') + 1));
  return { negate, directoryOnly, matches };
}

/** Go's `path/filepath.Match` as a regular expression over the whole string. */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i];
    if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else if (char === '\\') {
      if (i + 1 >= glob.length) throw new Error('trailing backslash');
      source += escapeRegExp(glob[++i]);
    } else if (char === '[') {
      const end = classEnd(glob, i);
      let body = glob.slice(i + 1, end);
      const negated = body.startsWith('^');
      if (negated) body = body.slice(1);
      if (body === '') throw new Error('empty character class');
      // Escape everything but ranges; Go's `\x` inside a class is a literal x.
      const members = body.replace(/\\(.)|([\]\\^[])|(-)/g, (_, escaped: string | undefined, special: string | undefined, dash: string | undefined) =>
        escaped !== undefined ? `\\${escaped}` : special !== undefined ? `\\${special}` : dash!,
      );
      // A negated class still never matches the separator.
      source += negated ? `[^/${members}]` : `[${members}]`;
      i = end;
    } else source += escapeRegExp(char);
  }
  return new RegExp(`^${source}$`, 's');
}

function classEnd(glob: string, start: number): number {
  for (let i = start + 1; i < glob.length; i++) {
    if (glob[i] === '\\') i++;
    else if (glob[i] === ']' && i > start + 1 + (glob[start + 1] === '^' ? 1 : 0)) return i;
  }
  throw new Error('unclosed [');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}
