import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chartTag, isSemVer } from '../../src/chart/semver.js';

// [version, valid SemVer 2] — semver.org's grammar, stricter than Helm's Masterminds parser.
const cases: [string, boolean][] = [
  ['0.1.0', true],
  ['1.2.3-rc.1+build.7', true],
  ['1.0.0-alpha.beta.1', true],
  ['1.0.0+20260101.sha-5114f85', true],
  ['10.20.30-0a.1--x', true],
  ['1.0', false],
  ['1', false],
  ['v1.2.3', false],
  ['01.2.3', false],
  ['1.2.3-01', false], // numeric prerelease identifiers have no leading zeros
  ['1.2.3+', false],
  ['1.2.3-', false],
  ['1.2.3+a..b', false],
  ['1.2.3 ', false],
  ['', false],
];
for (const [version, valid] of cases) {
  test(`${JSON.stringify(version)} is ${valid ? '' : 'not '}SemVer 2`, () => assert.equal(isSemVer(version), valid));
}

test('the OCI tag replaces every + with _', () => {
  assert.equal(chartTag('1.2.3-rc.1+build.7'), '1.2.3-rc.1_build.7');
  assert.equal(chartTag('1.0.0'), '1.0.0');
});
