// A kubeconfig file for helm, which cannot take a ClusterAccess in memory. It holds no credential:
// its user is an exec plug-in (client.authentication.k8s.io/v1) that fetches one from the running
// task when helm needs it (credentialServer.ts), so a token never outlives its use in a file.
import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import type { ClusterAccess } from './access.js';
import type { CredentialPluginCommand } from './credentialServer.js';

/** Writes `path` (mode 0600) naming the access's server and CA, and the plug-in that serves `socketPath`. */
export async function writeKubeconfig(path: string, access: ClusterAccess, namespace: string, plugin: CredentialPluginCommand, socketPath: string): Promise<void> {
  const cluster: Record<string, string> = { server: access.server };
  if (access.caPem) cluster['certificate-authority-data'] = Buffer.from(access.caPem, 'utf8').toString('base64');
  if (access.tlsServerName) cluster['tls-server-name'] = access.tlsServerName;
  const exec = {
    apiVersion: 'client.authentication.k8s.io/v1',
    command: plugin.command,
    args: [...plugin.args, socketPath],
    // v1 requires the field; the plug-in never prompts.
    interactiveMode: 'Never',
    provideClusterInfo: false,
  };
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'target', cluster }],
    users: [{ name: 'deployer', user: { exec } }],
    contexts: [{ name: 'target', context: { cluster: 'target', user: 'deployer', namespace } }],
    'current-context': 'target',
  };
  await writeFile(path, stringify(config), { mode: 0o600 });
}
