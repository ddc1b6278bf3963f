// How the deploy task reaches a Kubernetes API server: an address, the CA that vouches for it, and a
// credential. Every connection type of PrivateAksDeploy@1 resolves to one ClusterAccess, so the
// apply, rollout and helm code never know where the credential came from.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { TokenCredential } from '../azure/entra.js';
import { UserError } from '../errors.js';
import type { SecretRegistry } from '../log.js';

/**
 * The "Azure Kubernetes Service AAD Server" application: the audience of Entra tokens for AKS
 * (https://learn.microsoft.com/azure/aks/kubelogin-authentication, the `--server-id` kubelogin is given).
 */
const AKS_ENTRA_SERVER_ID = '6dae42f8-4368-4678-94ff-3960e28e3630';
export const AKS_ENTRA_SCOPE = `${AKS_ENTRA_SERVER_ID}/.default`;

/** Where a pod finds its service-account token, CA and namespace. */
const IN_CLUSTER_FOLDER = '/var/run/secrets/kubernetes.io/serviceaccount';

type ClusterCredentials =
  /** A bearer token asked for before every use: a file the kubelet rotates, or an Entra credential that refreshes itself. */
  | { kind: 'bearer'; token: () => Promise<string> }
  | { kind: 'clientCertificate'; certPem: string; keyPem: string };

export interface ClusterAccess {
  /** `https://host:port` of the API server. */
  server: string;
  /** PEM of the CA that signed the serving certificate; absent means the system's trust store. */
  caPem?: string;
  /** Name to verify the serving certificate against when it differs from the server's host. */
  tlsServerName?: string;
  credentials: ClusterCredentials;
  /** Namespace named by the kubeconfig context or the in-cluster folder, used when the task input is empty. */
  defaultNamespace?: string;
  /** For messages: `in-cluster service account`, `kubeconfig context aks-admin`, … */
  description: string;
}

export interface InClusterOptions {
  /** Default IN_CLUSTER_FOLDER; tests point it at a token minted by the test API server. */
  folder?: string;
  /** Default from KUBERNETES_SERVICE_HOST/PORT as a pod sees them, else `https://kubernetes.default.svc`. */
  server?: string;
}

/** The agent pod's own service account. The token is read anew for every request: the kubelet rotates it. */
export async function inClusterAccess(options: InClusterOptions = {}): Promise<ClusterAccess> {
  const folder = options.folder ?? IN_CLUSTER_FOLDER;
  const read = async (name: string) => {
    try {
      return await readFile(join(folder, name), 'utf8');
    } catch (error) {
      throw new UserError(
        `Cannot read ${join(folder, name)} (${(error as NodeJS.ErrnoException).code}): connectionType inCluster works only on an agent that runs in the cluster with a mounted service-account token.`,
      );
    }
  };
  const [caPem, namespace] = await Promise.all([read('ca.crt'), read('namespace').catch(() => undefined)]);
  await read('token');
  return {
    server: options.server ?? inClusterServer(),
    caPem,
    credentials: { kind: 'bearer', token: async () => (await read('token')).trim() },
    defaultNamespace: namespace?.trim() || undefined,
    description: 'the agent pod’s service account',
  };
}

function inClusterServer(): string {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  if (!host) return 'https://kubernetes.default.svc';
  const port = process.env.KUBERNETES_SERVICE_PORT || '443';
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

interface KubeconfigOptions {
  /** Context to use; default the kubeconfig's `current-context`. */
  context?: string;
  /**
   * For users that run kubelogin (what `listClusterUserCredential` returns for Entra-enabled AKS
   * clusters): the Entra credential whose AKS-audience token replaces the plug-in.
   */
  entra?: TokenCredential;
  secrets: SecretRegistry;
  /** Where the kubeconfig came from, for messages. */
  source: string;
}

/**
 * Reads a kubeconfig document into a ClusterAccess. Supported users: bearer token or token file,
 * client certificate, and — only with an Entra credential — kubelogin / the retired `azure`
 * auth provider, whose token we fetch in process instead. Other exec plug-ins are refused rather
 * than run: the task does not execute binaries a kubeconfig names.
 */
export function accessFromKubeconfig(text: string, options: KubeconfigOptions): ClusterAccess {
  const config = new KubeConfig();
  try {
    config.loadFromString(text);
  } catch (error) {
    throw new UserError(`${options.source} is not a valid kubeconfig: ${(error as Error).message.split('\n')[0]}`);
  }
  if (options.context) {
    if (!config.getContextObject(options.context)) {
      throw new UserError(`${options.source} has no context '${options.context}'; it has ${config.getContexts().map((c) => `'${c.name}'`).join(', ') || 'none'}.`);
    }
    config.setCurrentContext(options.context);
  }
  const context = config.getContextObject(config.getCurrentContext());
  const cluster = config.getCurrentCluster();
  const user = config.getCurrentUser();
  if (!context || !cluster || !user) throw new UserError(`${options.source} has no current context with a cluster and a user; set current-context or name a context.`);
  if (cluster.skipTLSVerify) throw new UserError(`${options.source}: cluster '${cluster.name}' sets insecure-skip-tls-verify; give its certificate-authority-data instead.`);

  const caPem = cluster.caData ? Buffer.from(cluster.caData, 'base64').toString('utf8') : undefined;
  const access = { server: cluster.server, caPem, tlsServerName: cluster.tlsServerName, defaultNamespace: context.namespace, description: `${options.source} (context ${context.name})` };
  const userText = (data?: string, file?: string) => (data ? Buffer.from(data, 'base64').toString('utf8') : file ? readFileNow(file) : undefined);
  if (user.token) {
    options.secrets.register(user.token);
    const token = user.token;
    return { ...access, credentials: { kind: 'bearer', token: () => Promise.resolve(token) } };
  }
  const certPem = userText(user.certData, user.certFile);
  const keyPem = userText(user.keyData, user.keyFile);
  if (certPem && keyPem) {
    // The agent masks single lines only: register each line of the key's body.
    for (const line of keyPem.split(/\r?\n/)) if (line.trim() && !line.startsWith('-----')) options.secrets.register(line.trim());
    return { ...access, credentials: { kind: 'clientCertificate', certPem, keyPem } };
  }
  // client-node types these as `any`: the exec block and the legacy auth-provider block.
  const plugin = ((user.exec as { command?: string } | undefined)?.command ?? (user.authProvider as { name?: string } | undefined)?.name);
  if (plugin && isAzurePlugin(plugin)) {
    if (!options.entra) {
      throw new UserError(
        `${options.source}: user '${user.name}' signs in with ${plugin}, which this task does not run; use connectionType azureResourceManager, which fetches the Entra token itself.`,
      );
    }
    const entra = options.entra;
    return { ...access, credentials: { kind: 'bearer', token: async () => (await entra.getToken(AKS_ENTRA_SCOPE)).token } };
  }
  throw new UserError(`${options.source}: user '${user.name}' has ${plugin ? `the credential plug-in '${plugin}'` : 'no credentials'}; use a token or a client certificate.`);
}

function isAzurePlugin(name: string): boolean {
  return /(^|\/)kubelogin$/.test(name) || name === 'azure';
}

function readFileNow(path: string): string {
  // Client certificate files of a kubeconfig are small and read once, while it is resolved.
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new UserError(`Cannot read ${path}, named by the kubeconfig (${(error as NodeJS.ErrnoException).code}).`);
  }
}
