import { renderGuardReport } from '../../src/guard/report.js';
import { runPrivateLinkGuard, type PrivateLinkGuardResult } from '../../src/guard/privateLinkGuard.js';
import { runTask, type TaskOutcome } from '../common/host.js';
import { readInputs } from './inputs.js';

void runTask(async (context) => {
  const result = await runPrivateLinkGuard({ ...context, ...readInputs() });
  return {
    ...verdict(result),
    outputs: { findings: String(result.findings.length), highFindings: String(result.highFindings), remediated: String(result.remediated) },
    summary: renderGuardReport(result),
  };
});

/** Fails on a high finding (in enforce mode), warns on any other, with the report attached either way. */
function verdict(result: PrivateLinkGuardResult): Pick<TaskOutcome, 'status' | 'message'> {
  const remediated = result.remediation ? `, ${result.remediated} remediated` : '';
  const counts = `${result.findings.length} finding(s), ${result.highFindings} high${remediated}`;
  if (result.failed) {
    const high = result.findings.filter((finding) => finding.severity === 'high').map((finding) => finding.id);
    return { status: 'failed', message: `Private posture not met (${counts}): ${high.join(', ')}; the report lists the fixes.` };
  }
  if (result.findings.length) return { status: 'withIssues', message: `Private posture has findings (${counts}); see the warnings and the report.` };
  return { message: `Private posture verified (${result.checks.length} checks${remediated}).` };
}
