// PrivateAksDeploy@1 against `kubectl apply --server-side` for the same 200 objects and the same
// API server: the bundled task started as the agent starts it (node, task-lib, inputs from the
// environment), kubectl as a user would run it. Each run applies to its own namespace, so every
// run creates the objects from scratch. Medians of five runs each, alternating the tools.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestCa } from '../test/env/ca.js';
import { kubeToolPath, startControlPlane } from '../test/kube/controlPlane.js';
import { prepareTask } from '../test/support/taskRunner.js';
import { medianSeconds, timed, type BenchReport, type ToolFigures } from './harness.js';

const OBJECTS = 200;
const RUNS = 5;

/** 100 ConfigMaps and 100 Services: objects that need no rollout, so only applying is measured. */
function manifests(): string {
  const objects: unknown[] = [];
  for (let index = 0; index < OBJECTS / 2; index++) {
    objects.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `config-${index}`, labels: { bench: 'deploy' } }, data: { index: String(index), payload: 'x'.repeat(512) } });
    objects.push({ apiVersion: 'v1', kind: 'Service', metadata: { name: `svc-${index}`, labels: { bench: 'deploy' } }, spec: { selector: { app: `app-${index}` }, ports: [{ port: 80, targetPort: 8080 }] } });
  }
  return objects.map((object) => `---\n${JSON.stringify(object)}\n`).join('');
}

export async function benchDeploy(): Promise<BenchReport[]> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-deploy-'));
  const cluster = await startControlPlane({ dir: join(dir, 'cluster'), ca: await createTestCa(join(dir, 'ca')) });
  try {
    const file = join(dir, 'objects.yaml');
    await writeFile(file, manifests());
    const ours: ToolFigures = { tool: 'PrivateAksDeploy (task process)', samples: [] };
    const kubectl: ToolFigures = { tool: 'kubectl apply --server-side', samples: [] };
    for (let run = 0; run < RUNS; run++) {
      for (const tool of ['task', 'kubectl'] as const) {
        const namespace = `bench-${tool}-${run}`;
        await cluster.createNamespace(namespace);
        if (tool === 'kubectl') {
          kubectl.samples.push(await timed(kubeToolPath('kubectl'), ['apply', '--server-side', `--kubeconfig=${cluster.adminKubeconfigPath}`, `--namespace=${namespace}`, '-f', file], process.env));
          continue;
        }
        const task = prepareTask('PrivateAksDeploy', {
          inputs: { connectionType: 'kubeconfig', kubeconfigPath: cluster.adminKubeconfigPath, authMode: 'none', namespace, deployType: 'manifests', manifests: file },
        });
        try {
          ours.samples.push(await timed(process.execPath, [task.script], task.env));
        } finally {
          await rm(task.tempDir, { recursive: true, force: true });
        }
      }
    }
    const ratio = medianSeconds(ours) / medianSeconds(kubectl);
    return [
      {
        title: `Apply ${OBJECTS} objects (ConfigMaps and Services) to the embedded API server`,
        figures: [ours, kubectl],
        targets: [{ claim: "median wall time at most kubectl's", met: ratio <= 1, detail: `task/kubectl = ${ratio.toFixed(2)}` }],
      },
    ];
  } finally {
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
