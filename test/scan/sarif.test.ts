// The task renders SARIF itself instead of running `trivy convert` after every scan; this compares
// the two on the same JSON reports: real scans of the planted image, and reports made up to reach
// the corners (a registry image target, CVSS scores, one vulnerability in several packages,
// package locations, paths that need escaping, a report without findings).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { parseTrivyReport } from '../../src/scan/findings.js';
import { renderSarif } from '../../src/scan/sarif.js';
import { testToolPath } from '../env/environment.js';
import { TRIVY_DB_FIXTURES, writeVulnerableImage } from '../fixtures/vulnerableImage.js';

const run = promisify(execFile);
let work: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'sarif-test-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

let reports = 0;
/** Our SARIF and `trivy convert`'s for the same JSON report, parsed. */
async function bothRenderings(json: string): Promise<[unknown, unknown]> {
  const jsonPath = join(work, `report-${++reports}.json`);
  const sarifPath = join(work, `report-${reports}.sarif`);
  await writeFile(jsonPath, json);
  await run(testToolPath('trivy'), ['convert', '--format', 'sarif', '--output', sarifPath, jsonPath]);
  return [JSON.parse(renderSarif(parseTrivyReport(json))), JSON.parse(await readFile(sarifPath, 'utf8'))];
}

describe('SARIF of real scans equals trivy convert', () => {
  let cache: string;
  let layout: string;
  before(async () => {
    cache = join(work, 'cache');
    await mkdir(join(cache, 'db'), { recursive: true });
    await run(testToolPath('trivy-db-fixture'), ['-output', join(cache, 'db'), ...TRIVY_DB_FIXTURES]);
    layout = join(work, 'image');
    await writeVulnerableImage(layout);
  });

  for (const ignoreUnfixed of [true, false]) {
    test(`the planted image${ignoreUnfixed ? ', unfixed ignored' : ''}`, async () => {
      const output = join(work, `scan-${ignoreUnfixed}.json`);
      const args = ['image', '--cache-dir', cache, '--skip-db-update', '--skip-java-db-update', '--scanners', 'vuln', '--format', 'json', '--output', output, '--skip-version-check', '--disable-telemetry', '--no-progress', '--input', layout];
      await run(testToolPath('trivy'), ignoreUnfixed ? [...args, '--ignore-unfixed'] : args, { cwd: work });
      const json = await readFile(output, 'utf8');
      const [ours, trivys] = await bothRenderings(json);
      assert.deepEqual(ours, trivys);
      assert.equal((ours as { runs: { results: unknown[] }[] }).runs[0].results.length, ignoreUnfixed ? 2 : 3);
    });
  }
});

const vulnerability = (id: string, pkg: string, overrides: Record<string, unknown> = {}) => ({
  VulnerabilityID: id, PkgName: pkg, InstalledVersion: '1.0.0', FixedVersion: '1.0.1', Severity: 'HIGH', Title: `${pkg} title`, Description: `${pkg} description`,
  PrimaryURL: `https://avd.aquasec.com/nvd/${id.toLowerCase()}`, ...overrides,
});

// Made up as Trivy writes reports: each target's vulnerabilities sorted by package (convert sorts again).
describe('SARIF of made-up reports equals trivy convert', () => {
  const cases: [string, object][] = [
    [
      'an image in a registry, CVSS scores, one vulnerability in two packages, package locations',
      {
        SchemaVersion: 2, Trivy: { Version: '0.74.0' }, ArtifactName: `127.0.0.1:5000/team/app@sha256:${'c'.repeat(64)}`, ArtifactType: 'container_image',
        Metadata: { ImageID: `sha256:${'d'.repeat(64)}`, RepoDigests: [`127.0.0.1:5000/team/app@sha256:${'c'.repeat(64)}`], RepoTags: ['127.0.0.1:5000/team/app:1.0'] },
        Results: [
          {
            Target: `127.0.0.1:5000/team/app@sha256:${'c'.repeat(64)} (debian 12.8)`, Class: 'os-pkgs', Type: 'debian',
            Vulnerabilities: [
              vulnerability('CVE-2024-0001', 'libssl3', { SeveritySource: 'nvd', CVSS: { nvd: { V3Vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', V3Score: 9.8, V2Score: 7.5, V2Vector: 'AV:N/AC:L/Au:N/C:P/I:P/A:P' } } }),
              vulnerability('CVE-2024-0001', 'openssl', { Title: 'the later title wins', Severity: 'CRITICAL' }),
              vulnerability('CVE-2024-0003', 'tar', { Severity: 'UNKNOWN' }),
              vulnerability('CVE-2024-0002', 'zlib1g', { Severity: 'LOW', FixedVersion: '', Description: '', PrimaryURL: '' }),
            ],
          },
          {
            Target: 'app/package-lock.json', Class: 'lang-pkgs', Type: 'npm',
            Packages: [{ Name: 'lodash', Version: '1.0.0', Locations: [{ StartLine: 10, EndLine: 20 }, { StartLine: 30, EndLine: 40 }] }],
            Vulnerabilities: [vulnerability('CVE-2024-0004', 'lodash', { Severity: 'MEDIUM' })],
          },
          {
            Target: 'Java', Class: 'lang-pkgs', Type: 'jar',
            Vulnerabilities: [vulnerability('GHSA-aaaa-bbbb-cccc', 'org.example:lib', { PkgPath: 'opt/my app/lib (copy).jar' })],
          },
          { Target: 'Python', Class: 'lang-pkgs', Type: 'python-pkg' },
        ],
      },
    ],
    ['a Docker Hub style name and a report without findings', { SchemaVersion: 2, Trivy: { Version: '0.74.0' }, ArtifactName: 'alpine:3.20', ArtifactType: 'container_image', Metadata: {}, Results: [{ Target: 'alpine:3.20 (alpine 3.20.3)', Class: 'os-pkgs', Type: 'alpine' }] }],
    [
      'an image on disk, and a target that is no image name',
      {
        SchemaVersion: 2, Trivy: { Version: '0.74.0' }, ArtifactName: '/agent/_work/1/s/out/Image Layout', ArtifactType: 'container_image', Metadata: {},
        Results: [{ Target: '/agent/_work/1/s/out/Image Layout (alpine 3.23.2)', Class: 'os-pkgs', Type: 'alpine', Vulnerabilities: [vulnerability('CVE-2024-0005', 'musl')] }],
      },
    ],
  ];
  for (const [name, report] of cases) {
    test(name, async () => {
      const [ours, trivys] = await bothRenderings(JSON.stringify(report));
      assert.deepEqual(ours, trivys);
    });
  }
});
