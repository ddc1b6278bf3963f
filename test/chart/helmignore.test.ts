// .helmignore rules as helm pkg/ignore applies them (v3.22 rules_test.go cases and the quirks).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { globToRegExp, HelmIgnore } from '../../src/chart/helmignore.js';

describe('HelmIgnore', () => {
  // [rules, path, is a folder, ignored]
  const cases: [string, string, boolean, boolean][] = [
    ['', 'templates/.scratch', false, true], // Helm's default rule
    ['', 'templates/deployment.yaml', false, false],
    ['', '.helmignore', false, false],
    ['', 'templates/sub/.hidden', false, false], // `*` and `?` stop at `/`
    ['*.tmp', 'scratch.tmp', false, true],
    ['*.tmp', 'deep/down/scratch.tmp', false, true], // no `/`: base name only
    ['*.tmp', 'scratch.tmpl', false, false],
    ['secrets/', 'secrets', true, true],
    ['secrets/', 'secrets', false, false], // trailing `/`: folders only
    ['secrets/', 'nested/secrets', true, true],
    ['/NOTES-draft.md', 'NOTES-draft.md', false, true],
    ['/NOTES-draft.md', 'docs/NOTES-draft.md', false, false], // a leading `/` anchors to the root
    ['docs/*.md', 'docs/a.md', false, true],
    ['docs/*.md', 'docs/sub/a.md', false, false],
    ['docs/*.md', 'other/docs/a.md', false, false], // `/` in the rule: whole path from the root
    ['file?.txt', 'file1.txt', false, true],
    ['file?.txt', 'file10.txt', false, false],
    ['[a-c].yaml', 'b.yaml', false, true],
    ['[^a-c].yaml', 'd.yaml', false, true],
    ['[^a-c].yaml', 'a.yaml', false, false],
    ['\\*.yaml', '*.yaml', false, true],
    ['\\*.yaml', 'x.yaml', false, false],
    ['# a comment\n\n  *.swp  ', 'x.swp', false, true],
    ['\uFEFF*.bak', 'x.bak', false, true], // a BOM before the first rule
    // First match wins and `!` never re-includes: it ignores whatever it does not match.
    ['*.txt\n!keep.txt', 'keep.txt', false, true],
    ['!keep.txt', 'keep.txt', false, false],
    ['!keep.txt', 'other.md', false, true],
    ['!docs/', 'docs', true, false],
    ['!docs/', 'README.md', false, true],
    ['*', '.', true, false], // the chart root is never ignored
  ];
  for (const [rules, path, isDirectory, ignored] of cases) {
    test(`${JSON.stringify(rules)} ${ignored ? 'ignores' : 'keeps'} ${path}${isDirectory ? '/' : ''}`, () => {
      assert.equal(HelmIgnore.parse(rules).ignores(path, isDirectory), ignored);
    });
  }

  test('`**` and broken patterns are refused with the line number', () => {
    assert.throws(() => HelmIgnore.parse('ok\nsrc/**/gen'), /^InputError: Input 'chartPath': \.helmignore line 2: 'src\/\*\*\/gen' uses \*\*/);
    assert.throws(() => HelmIgnore.parse('[abc'), /line 1: '\[abc' is not a valid pattern \(unclosed \[\)/);
  });
});

describe('globToRegExp (Go filepath.Match)', () => {
  const cases: [string, string, boolean][] = [
    ['a*', 'abc', true],
    ['a*', 'a/b', false],
    ['[]a]', ']', true], // `]` first in a class is a literal, as in Go
    ['[^]a]', 'b', true],
    ['a.b', 'axb', false], // regex characters are literals
    ['(x)+', '(x)+', true],
  ];
  for (const [glob, name, matches] of cases) {
    test(`${glob} ${matches ? 'matches' : 'does not match'} ${name}`, () => assert.equal(globToRegExp(glob).test(name), matches));
  }
});
