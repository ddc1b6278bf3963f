// `npm run demo`: the extension's tasks, bundled as in the .vsix, run in order the way a pipeline on
// the in-cluster agent pool would run them — against a real registry and the embedded stand-ins
// for the Azure endpoints, all on loopback — then the agent pool chart is installed into an
// embedded cluster. Each step prints what the task or the chart did and produced.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAcrEnvironment, type AcrEnvironment } from '../test/env/environment.js';
import type { TaskRun } from '../test/support/taskRunner.js';
import { agentPoolStep } from './agentPool.js';
import { buildImageStep } from './buildImage.js';
import { deployStep } from './deploy.js';
import { guardStep } from './guard.js';
import { pushChartStep } from './pushChart.js';
import { pushImageStep } from './pushImage.js';

export interface DemoContext {
  env: AcrEnvironment;
  work: string;
  /** What earlier steps produced (digests, references) for later ones to use. */
  outputs: Record<string, string>;
}

export type DemoStep = { title: string; run(context: DemoContext): Promise<TaskRun> };

const steps: DemoStep[] = [buildImageStep, pushImageStep, pushChartStep, guardStep, deployStep, agentPoolStep];

/** The task's own log lines, without the agent's logging commands. */
export function printRun(run: TaskRun): void {
  for (const line of run.maskedOutput.split('\n')) if (line.trim() && !line.startsWith('##vso[')) console.log(`    ${line}`);
  for (const warning of run.warnings) console.log(`    warning: ${warning}`);
  for (const [name, value] of Object.entries(run.outputs)) console.log(`    output ${name} = ${value}`);
  console.log(`    result: ${run.result}${run.message ? ` (${run.message})` : ''}`);
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'private-aks-acr-demo-'));
  console.log('Starting the registry (distribution, TLS, token auth) and the Entra ID / ACR token server stand-ins on loopback…');
  const env = await startAcrEnvironment();
  const context: DemoContext = { env, work, outputs: {} };
  let failed = false;
  try {
    for (const [index, step] of steps.entries()) {
      console.log(`\n[${index + 1}/${steps.length}] ${step.title}`);
      const run = await step.run(context);
      printRun(run);
      if (run.result !== 'Succeeded' && run.result !== 'SucceededWithIssues') {
        failed = true;
        break;
      }
    }
  } finally {
    await env.stop();
    await rm(work, { recursive: true, force: true });
  }
  console.log(failed ? '\nThe demo stopped at a failed step.' : '\nAll steps succeeded.');
  process.exitCode = failed ? 1 : 0;
}

await main();
