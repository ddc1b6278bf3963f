import * as tl from 'azure-pipelines-task-lib/task.js';
import { UserError } from '../../src/errors.js';
import { renderGuardReport } from '../../src/guard/report.js';
import { runPrivateLinkGuard } from '../../src/guard/privateLinkGuard.js';
import { agentTransportOptions, attachSummary, runTask, taskLogger, taskSecrets } from '../common/host.js';
import { readInputs } from './inputs.js';

void runTask(async () => {
  const inputs = readInputs();
  const result = await runPrivateLinkGuard({ ...inputs, transport: agentTransportOptions(), logger: taskLogger, secrets: taskSecrets });
  tl.setVariable('findings', String(result.findings.length), false, true);
  tl.setVariable('highFindings', String(result.highFindings), false, true);
  tl.setVariable('remediated', String(result.remediated), false, true);
  attachSummary('private-link-guard', renderGuardReport(result));
  const counts = `${result.findings.length} finding(s), ${result.highFindings} high${result.remediation ? `, ${result.remediated} remediated` : ''}`;
  if (result.failed) {
    const high = result.findings.filter((finding) => finding.severity === 'high').map((finding) => finding.id);
    throw new UserError(`Private posture not met (${counts}): ${high.join(', ')}; the report lists the fixes.`);
  }
  if (result.findings.length) tl.setResult(tl.TaskResult.SucceededWithIssues, `Private posture has findings (${counts}); see the warnings and the report.`);
  else tl.setResult(tl.TaskResult.Succeeded, `Private posture verified (${result.checks.length} checks${result.remediation ? `, ${result.remediated} remediated` : ''}).`);
});
