// A kubeconfig file for the CLIs (helm, kubectl) that cannot take a ClusterAccess in memory.
import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import type { ClusterAccess } from './access.js';

/**
 * Writes `path` (mode 0600) with the access's server, CA and a credential valid now: the current
 * bearer token (a refreshed Entra token has at least five minutes left) or the client certificate.
 */
export async function writeKubeconfig(path: string, access: ClusterAccess, namespace: string): Promise<void> {
  const credentials = access.credentials;
  const user =
    credentials.kind === 'bearer'
      ? { token: await credentials.token() }
      : { 'client-certificate-data': base64(credentials.certPem), 'client-key-data': base64(credentials.keyPem) };
  const cluster: Record<string, string> = { server: access.server };
  if (access.caPem) cluster['certificate-authority-data'] = base64(access.caPem);
  if (access.tlsServerName) cluster['tls-server-name'] = access.tlsServerName;
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'target', cluster }],
    users: [{ name: 'deployer', user }],
    contexts: [{ name: 'target', context: { cluster: 'target', user: 'deployer', namespace } }],
    'current-context': 'target',
  };
  await writeFile(path, stringify(config), { mode: 0o600 });
}

function base64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}
