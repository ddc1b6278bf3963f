// The scan as JUnit XML, for the run's Tests tab (Azure DevOps reads the JUnit schema of the
// Ant/Maven surefire reports: testsuites > testsuite > testcase with failure or skipped). One suite
// per scanned target, one test per finding: a failure when its severity fails the gate, skipped
// when it is reported only, and one passing test for a target without findings.
import type { Severity } from './findings.js';
import type { ScannedTarget } from './findings.js';

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

function xml(text: string): string {
  // Characters XML 1.0 cannot hold at all are dropped; the rest are escaped.
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '').replace(/[&<>"']/g, (char) => XML_ESCAPES[char]);
}

export function renderJUnit(subject: string, targets: readonly ScannedTarget[], failOn: readonly Severity[]): string {
  const suites = targets.map((target) => {
    const cases: string[] = [];
    let failures = 0;
    let skipped = 0;
    for (const finding of target.findings) {
      const name = `${finding.id} in ${finding.pkg} ${finding.installedVersion}`;
      const fix = finding.fixedVersion ? `fixed in ${finding.fixedVersion}` : 'no fixed version yet';
      const detail = `${finding.severity}: ${finding.title || finding.id} (${fix})${finding.url ? `\n${finding.url}` : ''}`;
      if (failOn.includes(finding.severity)) {
        failures++;
        cases.push(`    <testcase classname="${xml(target.target)}" name="${xml(name)}"><failure type="${finding.severity}" message="${xml(`${finding.severity} ${finding.id}: ${fix}`)}">${xml(detail)}</failure></testcase>`);
      } else {
        skipped++;
        cases.push(`    <testcase classname="${xml(target.target)}" name="${xml(name)}"><skipped message="${xml(`${finding.severity} is reported, not gated (failOn: ${failOn.join(', ') || 'none'})`)}"/></testcase>`);
      }
    }
    if (cases.length === 0) cases.push(`    <testcase classname="${xml(target.target)}" name="no known vulnerabilities"/>`);
    return `  <testsuite name="${xml(target.target)}" tests="${cases.length}" failures="${failures}" errors="0" skipped="${skipped}">\n${cases.join('\n')}\n  </testsuite>`;
  });
  if (suites.length === 0) {
    suites.push(`  <testsuite name="${xml(subject)}" tests="1" failures="0" errors="0" skipped="0">\n    <testcase classname="${xml(subject)}" name="no packages Trivy knows"/>\n  </testsuite>`);
  }
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="${xml(`Vulnerabilities in ${subject}`)}">\n${suites.join('\n')}\n</testsuites>\n`;
}
