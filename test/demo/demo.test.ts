// The README's first command must work: the demo runs every bundled task in order against the
// embedded registry, stand-ins and API server, then installs the agent pool chart, and each step succeeds.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const ROOT = join(import.meta.dirname, '..', '..');

test('npm run demo runs every task and the agent pool chart to success', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(ROOT, 'demo', 'run.ts')], { cwd: ROOT, timeout: 600_000, maxBuffer: 16 * 1024 * 1024 });
  const steps = [...stdout.matchAll(/^\[(\d+)\/(\d+)\] (\S+)/gm)].map((match) => match[3]);
  assert.deepEqual(steps, ['PrivateAcrBuildImage@1', 'PrivateAcrPushImage@1', 'PrivateAcrPushChart@1', 'PrivateLinkGuard@1', 'PrivateAksDeploy@1', 'Agent']);
  // The pool's objects, each profile's placeholder registration, and KEDA's agent for the queued job.
  assert.match(stdout, /scaledjob\.keda\.sh\/agents-azure-pipelines-agent-builds\s/);
  assert.match(stdout, /^ +agents-azure-pipelines-agent-builds-placeholder +offline +agent\.profile=builds$/m);
  assert.match(stdout, /^ +agents-azure-pipelines-agent-builds-\w{5} +agents-azure-pipelines-agent-builds$/m);
  assert.equal([...stdout.matchAll(/^ {4}result: (Succeeded|SucceededWithIssues)\b/gm)].length, steps.length, stdout);
  assert.match(stdout, /All steps succeeded\.$/m);
  // The deployment runs the image the build step built, by its digest.
  const built = /^ {4}output digest = (sha256:[a-f0-9]{64})$/m.exec(stdout)?.[1];
  assert.ok(built, stdout);
  assert.match(stdout, new RegExp(`^ {4}deployed image: \\S+/demo/web:4711@${built}`, 'm'));
});
