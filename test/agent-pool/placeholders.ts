// What each placeholder hook pod of the chart does, done without a container runtime (the fake
// kubelet runs no containers): agent-image/start.sh with the environment the chart renders for the
// hook's container, against the fake agent, which registers over Azure DevOps' REST API as the real
// agent does (FAKE_AZDO_HTTP). Paths of files the pod would mount become local files.
import { Sandbox } from '../agent-image/harness.js';
import { agentContainer, type KubeObject, type PodTemplate } from './chart.js';

export interface PlaceholderCredentials {
  /** The PAT the release's Secret holds. */
  pat: string;
  /** The CA that signed the Azure DevOps stand-in (the chart's caBundle). */
  caCertPath: string;
}

/** Registers every placeholder the rendered chart holds; throws with start.sh's output if one fails. */
export async function registerPlaceholders(rendered: KubeObject[], credentials: PlaceholderCredentials): Promise<string[]> {
  const names: string[] = [];
  for (const job of rendered.filter((object) => object.kind === 'Job' && object.metadata.labels?.['app.kubernetes.io/component'] === 'placeholder')) {
    const container = agentContainer((job.spec as { template: PodTemplate }).template);
    const sandbox = await Sandbox.create();
    try {
      const env: Record<string, string> = {};
      for (const variable of container.env ?? []) if (variable.value !== undefined) env[variable.name] = variable.value;
      Object.assign(env, {
        AZP_TOKEN_FILE: await sandbox.secretFile('pat', credentials.pat),
        AZP_CA_CERT_FILE: credentials.caCertPath,
        AZP_WORK: `${sandbox.root}/work`,
        HOME: sandbox.root,
        FAKE_AZDO_HTTP: 'true',
      });
      const exit = await sandbox.start(env).exited;
      if (exit.code !== 0) throw new Error(`the placeholder of ${job.metadata.name} did not register (exit ${exit.code}):\n${exit.stderr}`);
      names.push(env.AZP_AGENT_NAME);
    } finally {
      await sandbox.dispose();
    }
  }
  return names;
}
