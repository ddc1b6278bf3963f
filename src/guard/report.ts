// The markdown report attached to the run: every check with its evidence, the fixes for what
// failed, and what `remediate` changed or refused to change.
import type { CheckResult } from './checks.js';
import type { PrivateLinkGuardResult } from './privateLinkGuard.js';

const STATUS_MARK: Record<CheckResult['status'], string> = { pass: '✅ pass', fail: '❌ fail', skip: '➖ n/a' };

/** Keeps table cells on one row. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** One line per failed check, as the task log and the warnings show them. */
export function describeFinding(finding: CheckResult): string {
  return `[${finding.severity}] ${finding.id} (${finding.resource}): not met: ${finding.title} — ${finding.evidence}. Fix: ${finding.fix ?? 'see the report'}`;
}

export function renderGuardReport(result: PrivateLinkGuardResult): string {
  const lines = [
    `## Private Link Guard (${result.mode})`,
    '',
    `${result.findings.length} finding(s), ${result.highFindings} of severity high${result.remediation ? `; ${result.remediated} fixed by remediation` : ''}.`,
    '',
    '| Result | Check | Resource | Severity | Evidence |',
    '|---|---|---|---|---|',
    ...result.checks.map((check) => `| ${STATUS_MARK[check.status]} | \`${check.id}\` ${cell(check.title)} | ${cell(check.resource)} | ${check.severity} | ${cell(check.evidence)} |`),
  ];
  if (result.findings.length) {
    lines.push('', '### How to fix', '');
    for (const finding of result.findings) {
      lines.push(`- **${finding.id}** (${finding.severity}, ${finding.resource}): ${finding.title}`, '', '  ```sh', `  ${finding.fix ?? ''}`, '  ```');
    }
  }
  if (result.remediation) {
    lines.push('', '### Remediation', '');
    if (result.remediation.changes.length === 0 && result.remediation.refusals.length === 0) lines.push('Nothing to change.');
    for (const change of result.remediation.changes) lines.push(`- changed ${change}`);
    for (const refusal of result.remediation.refusals) lines.push(`- not changed: ${refusal}`);
  }
  return `${lines.join('\n')}\n`;
}
