// The gate's rules as tables: failOn and maxDatabaseAge as users write them, the database's age
// from its metadata.json, the verdict line, and the database artifact check that catches copies
// which lost their media types.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { InputError } from '../../src/errors.js';
import { checkDatabaseArtifact, TRIVY_DB_LAYER, TRIVY_DB_SOURCE } from '../../src/scan/database.js';
import type { Finding } from '../../src/scan/findings.js';
import { blockingFindings, formatAge, parseFailOn, readDatabaseMetadata } from '../../src/scan/gate.js';
import { gateFailure, type ScanImageResult } from '../../src/scan/scanImage.js';

const isInputError = (input: string, message: RegExp) => (error: unknown) => error instanceof InputError && error.input === input && message.test(error.message);

describe('failOn', () => {
  const accepted: [string, string[]][] = [
    ['CRITICAL,HIGH', ['CRITICAL', 'HIGH']],
    ['high, critical', ['CRITICAL', 'HIGH']],
    ['MEDIUM HIGH\nLOW', ['HIGH', 'MEDIUM', 'LOW']],
    ['none', []],
    ['', []],
  ];
  for (const [value, expected] of accepted) test(`reads '${value.replace('\n', '\\n')}'`, () => assert.deepEqual(parseFailOn(value), expected));
  test('refuses a word that is no severity', () => assert.throws(() => parseFailOn('CRITICAL,SEVERE'), isInputError('failOn', /'SEVERE' is not a severity/)));
});

describe('ages', () => {
  const ages: [number, string][] = [[9 * 60_000 + 59_000, '9m'], [7 * 3_600_000 + 12 * 60_000, '7h 12m'], [47 * 3_600_000, '1d 23h'], [72 * 3_600_000, '3d'], [5 * 86_400_000 + 3 * 3_600_000, '5d 3h']];
  for (const [ms, text] of ages) test(`prints ${text}`, () => assert.equal(formatAge(ms), text));
});

test("the database's age comes from the metadata.json Trivy downloaded; a database Trivy did not fetch has none", async () => {
  const cache = await mkdtemp(join(tmpdir(), 'trivy-cache-'));
  try {
    await mkdir(join(cache, 'db'));
    await writeFile(join(cache, 'db', 'metadata.json'), JSON.stringify({ Version: 2, NextUpdate: '2026-01-02T06:00:00Z', UpdatedAt: '2026-01-02T00:00:00Z', DownloadedAt: '2026-01-05T00:00:00Z' }));
    assert.deepEqual(await readDatabaseMetadata(cache, 'db'), { updatedAt: new Date('2026-01-02T00:00:00Z'), nextUpdate: new Date('2026-01-02T06:00:00Z') });
    assert.equal(await readDatabaseMetadata(cache, 'java-db'), undefined);
  } finally {
    await rm(cache, { recursive: true, force: true });
  }
});

const finding = (id: string, severity: Finding['severity']): Finding => ({ id, pkg: 'pkg', installedVersion: '1', fixedVersion: '2', severity, title: '', target: 't' });

describe('verdict', () => {
  const findings = [finding('CVE-1', 'CRITICAL'), finding('CVE-2', 'HIGH'), finding('CVE-3', 'LOW')];
  const result = (overrides: Partial<ScanImageResult>): Omit<ScanImageResult, 'failure'> => ({
    subject: 'contoso.azurecr.io/app@sha256:1', targets: [], findings, counts: { CRITICAL: 1, HIGH: 1, MEDIUM: 0, LOW: 1, UNKNOWN: 0 },
    failOn: ['CRITICAL', 'HIGH'], blocking: blockingFindings(findings, ['CRITICAL', 'HIGH']),
    database: { reference: 'contoso.azurecr.io/aquasecurity/trivy-db:2', updatedAt: new Date('2026-01-01T00:00:00Z'), ageMs: 3_600_000 },
    maxDatabaseAgeMs: 72 * 3_600_000, reportPath: 'r', junitPath: 'j', ...overrides,
  });
  test('fails on the listed severities, naming them and the IDs', () => {
    assert.equal(gateFailure(result({})), '2 vulnerabilities at CRITICAL, HIGH in contoso.azurecr.io/app@sha256:1 (CVE-1, CVE-2): update the packages that have a fix (the run summary lists the fixed versions), or list the vulnerabilities you accept in ignoreFile.');
  });
  test('passes when nothing is at the listed severities', () => {
    assert.equal(gateFailure(result({ failOn: ['MEDIUM'], blocking: blockingFindings(findings, ['MEDIUM']) })), undefined);
  });
  test('a stale database fails first, with its age and the import step that refreshes it', () => {
    const stale = { reference: 'contoso.azurecr.io/aquasecurity/trivy-db:2', updatedAt: new Date('2026-01-01T00:00:00Z'), ageMs: 5 * 86_400_000 + 3_600_000 };
    assert.equal(
      gateFailure(result({ database: stale })),
      'The vulnerability database contoso.azurecr.io/aquasecurity/trivy-db:2 is 5d 1h old (built 2026-01-01T00:00:00.000Z), older than maxDatabaseAge 3d: refresh it with the scheduled PrivateAcrImport step (images: ghcr.io/aquasecurity/trivy-db:2 aquasecurity/trivy-db:2) into contoso.azurecr.io.',
    );
  });
});

describe('database artifact', () => {
  const reference = 'contoso.azurecr.io/aquasecurity/trivy-db:2';
  const manifest = (layers: object[]) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes: Buffer.from(JSON.stringify({ schemaVersion: 2, layers })) });
  const check = (value: Parameters<typeof checkDatabaseArtifact>[4]) => () => checkDatabaseArtifact('databaseRepository', reference, TRIVY_DB_SOURCE, TRIVY_DB_LAYER, value);
  test('accepts the published shape', () => assert.doesNotThrow(check(manifest([{ mediaType: TRIVY_DB_LAYER, digest: 'sha256:1', size: 1, annotations: { 'org.opencontainers.image.title': 'db.tar.gz' } }]))));
  test('a missing repository says how to import it', () => assert.throws(check(undefined), isInputError('databaseRepository', /does not exist in the registry \(MANIFEST_UNKNOWN\); refresh it with the scheduled PrivateAcrImport step/)));
  test('a copy that lost its media type says so', () => {
    assert.throws(check(manifest([{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: 'sha256:1', size: 1, annotations: { 'org.opencontainers.image.title': 'db.tar.gz' } }])), isInputError('databaseRepository', /copied without its media types/));
  });
  test('a copy that lost its title annotation says so', () => assert.throws(check(manifest([{ mediaType: TRIVY_DB_LAYER, digest: 'sha256:1', size: 1 }])), isInputError('databaseRepository', /copied without its media types/)));
});
