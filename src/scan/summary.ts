// The run summary of a scan: counts by severity with the gate marked, the database's age, and the
// findings with the version that fixes each, most severe first.
import { formatAge } from './gate.js';
import { SEVERITIES } from './findings.js';
import type { ScanImageResult } from './scanImage.js';

/** Rows of the findings table; the SARIF and JUnit reports hold every finding. */
const MAX_ROWS = 100;

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

export function renderScanSummary(result: ScanImageResult): string {
  const lines = [`### Vulnerability scan of ${cell(result.subject)}`, ''];
  const verdict = result.failure ? `**failed** — ${cell(result.failure)}` : `**passed** (failOn: ${result.failOn.join(', ') || 'none'})`;
  lines.push(`Gate: ${verdict}`, '');
  const databases = [result.database, result.javaDatabase].filter((used) => used !== undefined);
  for (const used of databases) lines.push(`Database \`${used.reference}\`: built ${used.updatedAt.toISOString()}, ${formatAge(used.ageMs)} old (maxDatabaseAge ${formatAge(result.maxDatabaseAgeMs)})  `);
  lines.push('', '| Severity | Found | With a fix | Gate |', '|---|---:|---:|---|');
  for (const severity of SEVERITIES) {
    const found = result.findings.filter((finding) => finding.severity === severity);
    const fixable = found.filter((finding) => finding.fixedVersion).length;
    lines.push(`| ${severity} | ${found.length} | ${fixable} | ${result.failOn.includes(severity) ? 'fails the run' : 'reported'} |`);
  }
  if (result.findings.length > 0) {
    lines.push('', '| Vulnerability | Package | Installed | Fixed in | Severity | Found in |', '|---|---|---|---|---|---|');
    for (const finding of result.findings.slice(0, MAX_ROWS)) {
      const id = finding.url ? `[${cell(finding.id)}](${finding.url})` : cell(finding.id);
      lines.push(`| ${id} | ${cell(finding.pkg)} | ${cell(finding.installedVersion)} | ${cell(finding.fixedVersion) || '—'} | ${finding.severity} | ${cell(finding.target)} |`);
    }
    if (result.findings.length > MAX_ROWS) lines.push('', `${result.findings.length - MAX_ROWS} more in the SARIF report and the Tests tab.`);
  }
  return `${lines.join('\n')}\n`;
}
