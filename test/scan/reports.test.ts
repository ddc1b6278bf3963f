// Reading Trivy's JSON report, and the JUnit and summary renderings of it: failures for the gated
// severities, skipped tests for the reported ones, a passing test for a clean target, escaping.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ContentError } from '../../src/errors.js';
import { countBySeverity, parseTrivyReport, scannedTargets, sortFindings } from '../../src/scan/findings.js';

const readTrivyReport = (json: string) => scannedTargets(parseTrivyReport(json));
import { renderJUnit } from '../../src/scan/junit.js';
import { renderScanSummary } from '../../src/scan/summary.js';
import type { ScanImageResult } from '../../src/scan/scanImage.js';

const report = JSON.stringify({
  SchemaVersion: 2,
  ArtifactName: 'contoso.azurecr.io/app@sha256:1',
  Results: [
    {
      Target: 'contoso.azurecr.io/app@sha256:1 (alpine 3.23.2)',
      Class: 'os-pkgs',
      Vulnerabilities: [
        { VulnerabilityID: 'CVE-2', PkgName: 'musl', InstalledVersion: '1.2.5-r8', FixedVersion: '1.2.5-r9', Severity: 'HIGH', Title: 'musl <overflow> & "more"', PrimaryURL: 'https://avd.example/CVE-2' },
        { VulnerabilityID: 'CVE-3', PkgName: 'busybox', InstalledVersion: '1.37.0-r20', Severity: 'MEDIUM' },
      ],
    },
    { Target: 'Node.js', Class: 'lang-pkgs', Vulnerabilities: [{ VulnerabilityID: 'CVE-1', PkgName: 'lodash', InstalledVersion: '4.17.20', FixedVersion: '4.17.21', Severity: 'CRITICAL' }] },
    { Target: 'Python', Class: 'lang-pkgs', Vulnerabilities: null },
  ],
});

describe('trivy JSON report', () => {
  const targets = readTrivyReport(report);
  test('keeps every target, clean ones too', () => assert.deepEqual(targets.map((target) => [target.target, target.findings.length]), [['contoso.azurecr.io/app@sha256:1 (alpine 3.23.2)', 2], ['Node.js', 1], ['Python', 0]]));
  test('sorts findings most severe first and counts them by severity', () => {
    const findings = sortFindings(targets.flatMap((target) => target.findings));
    assert.deepEqual(findings.map((finding) => `${finding.severity} ${finding.id} ${finding.pkg} ${finding.fixedVersion || '-'}`), ['CRITICAL CVE-1 lodash 4.17.21', 'HIGH CVE-2 musl 1.2.5-r9', 'MEDIUM CVE-3 busybox -']);
    assert.deepEqual(countBySeverity(findings), { CRITICAL: 1, HIGH: 1, MEDIUM: 1, LOW: 0, UNKNOWN: 0 });
  });
  test('refuses a report of another schema', () => assert.throws(() => readTrivyReport('{"SchemaVersion":1}'), ContentError));
});

describe('JUnit for the Tests tab', () => {
  const xml = renderJUnit('contoso.azurecr.io/app@sha256:1', readTrivyReport(report), ['CRITICAL', 'HIGH']);
  const suites = [...xml.matchAll(/<testsuite name="([^"]*)" tests="(\d+)" failures="(\d+)" errors="0" skipped="(\d+)">/g)].map((match) => match.slice(1));
  test('one suite per target with its counts', () => {
    assert.deepEqual(suites, [['contoso.azurecr.io/app@sha256:1 (alpine 3.23.2)', '2', '1', '1'], ['Node.js', '1', '1', '0'], ['Python', '1', '0', '0']]);
  });
  test('a gated finding fails with its fix, a reported one is skipped, a clean target passes', () => {
    assert.match(xml, /<testcase classname="Node.js" name="CVE-1 in lodash 4.17.20"><failure type="CRITICAL" message="CRITICAL CVE-1: fixed in 4.17.21">/);
    assert.match(xml, /name="CVE-3 in busybox 1.37.0-r20"><skipped message="MEDIUM is reported, not gated \(failOn: CRITICAL, HIGH\)"\/>/);
    assert.match(xml, /<testcase classname="Python" name="no known vulnerabilities"\/>/);
  });
  test('escapes what XML cannot hold', () => {
    assert.match(xml, /HIGH: musl &lt;overflow&gt; &amp; &quot;more&quot; \(fixed in 1\.2\.5-r9\)/);
    assert.doesNotMatch(xml, /<overflow>/);
  });
});

test('the run summary lists counts by severity with the gate, and each finding with its fixed version', () => {
  const targets = readTrivyReport(report);
  const findings = sortFindings(targets.flatMap((target) => target.findings));
  const result: ScanImageResult = {
    subject: 'contoso.azurecr.io/app@sha256:1', targets, findings, counts: countBySeverity(findings), failOn: ['CRITICAL'], blocking: findings.slice(0, 1),
    database: { reference: 'contoso.azurecr.io/aquasecurity/trivy-db:2', updatedAt: new Date('2026-01-01T00:00:00Z'), ageMs: 2 * 3_600_000 },
    maxDatabaseAgeMs: 72 * 3_600_000, reportPath: 'r.sarif', junitPath: 'j.xml', failure: '1 vulnerability at CRITICAL …',
  };
  const summary = renderScanSummary(result);
  assert.match(summary, /Gate: \*\*failed\*\* — 1 vulnerability at CRITICAL …/);
  assert.match(summary, /Database `contoso.azurecr.io\/aquasecurity\/trivy-db:2`: built 2026-01-01T00:00:00.000Z, 2h old \(maxDatabaseAge 3d\)/);
  assert.match(summary, /\| CRITICAL \| 1 \| 1 \| fails the run \|\n\| HIGH \| 1 \| 1 \| reported \|\n\| MEDIUM \| 1 \| 0 \| reported \|/);
  assert.match(summary, /\| CVE-1 \| lodash \| 4.17.20 \| 4.17.21 \| CRITICAL \| Node.js \|/);
  assert.match(summary, /\| \[CVE-2\]\(https:\/\/avd.example\/CVE-2\) \| musl \| 1.2.5-r8 \| 1.2.5-r9 \| HIGH \|/);
  assert.match(summary, /\| CVE-3 \| busybox \| 1.37.0-r20 \| — \| MEDIUM \|/);
});
