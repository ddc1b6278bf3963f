// The @kubernetes/client-node clients over a ClusterAccess. KubeConfig builds a new https.Agent
// (so a new TLS handshake) for every request and only knows static or plug-in credentials; this
// subclass keeps one keep-alive agent per cluster and asks the ClusterAccess for the bearer token
// on each request, so rotated service-account tokens and refreshed Entra tokens are picked up.
import { Agent } from 'node:https';
import { AppsV1Api, BatchV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, type RequestContext } from '@kubernetes/client-node';
import { AuthenticationError, UserError } from '../errors.js';
import type { ClusterAccess } from './access.js';

/** The field manager of every server-side apply, named for the product (`kubectl get --show-managed-fields`). */
export const FIELD_MANAGER = 'private-aks-acr-pipelines';

class ClusterConfig extends KubeConfig {
  private readonly agent: Agent;

  constructor(private readonly access: ClusterAccess, namespace: string) {
    super();
    this.loadFromOptions({
      clusters: [{ name: 'target', server: access.server, skipTLSVerify: false }],
      users: [{ name: 'deployer' }],
      contexts: [{ name: 'target', cluster: 'target', user: 'deployer', namespace }],
      currentContext: 'target',
    });
    const credentials = access.credentials;
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: 16,
      ca: access.caPem,
      servername: access.tlsServerName,
      ...(credentials.kind === 'clientCertificate' ? { cert: credentials.certPem, key: credentials.keyPem } : {}),
    });
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    if (this.access.credentials.kind === 'bearer') context.setHeaderParam('Authorization', `Bearer ${await this.access.credentials.token()}`);
    context.setAgent(this.agent);
  }

  close(): void {
    this.agent.destroy();
  }
}

export interface ClusterClient {
  objects: KubernetesObjectApi;
  core: CoreV1Api;
  apps: AppsV1Api;
  batch: BatchV1Api;
  /** Namespace for objects that name none. */
  namespace: string;
  access: ClusterAccess;
  close(): void;
}

export function openCluster(access: ClusterAccess, namespace: string): ClusterClient {
  const config = new ClusterConfig(access, namespace);
  return {
    objects: KubernetesObjectApi.makeApiClient(config),
    core: config.makeApiClient(CoreV1Api),
    apps: config.makeApiClient(AppsV1Api),
    batch: config.makeApiClient(BatchV1Api),
    namespace,
    access,
    close: () => config.close(),
  };
}

/** The parts of client-node's ApiException we read (checked structurally: the class is not exported from every entry). */
interface ApiFailure {
  code: number;
  body: unknown;
}

function isApiFailure(error: unknown): error is ApiFailure {
  return typeof error === 'object' && error !== null && typeof (error as ApiFailure).code === 'number' && 'body' in error;
}

/** Kubernetes' own message from a Status body: for RBAC it names user, verb, resource and namespace. */
function statusMessage(body: unknown): string | undefined {
  const text = typeof body === 'string' ? body : JSON.stringify(body ?? '');
  try {
    const status = JSON.parse(text) as { message?: string };
    return status.message;
  } catch {
    return text.slice(0, 300) || undefined;
  }
}

/**
 * One line for a failed API call. `action` says what we tried (`apply deployments.apps "web" in
 * namespace "apps"`). 401 and 403 become AuthenticationErrors that keep Kubernetes' message, which
 * names the verb, resource and namespace RBAC refused; other errors that are not API failures
 * (network, TLS) pass through as UserErrors with the server named.
 */
export function describeKubernetesError(error: unknown, action: string, access: ClusterAccess): Error {
  if (isApiFailure(error)) {
    const message = statusMessage(error.body) ?? `HTTP ${error.code}`;
    if (error.code === 401) {
      return new AuthenticationError(`The API server ${access.server} did not accept the credentials of ${access.description} (HTTP 401) while trying to ${action}: ${message}`);
    }
    if (error.code === 403) return new AuthenticationError(`RBAC refused to ${action}: ${message}. Grant the deploying identity that verb in a Role or RoleBinding.`);
    return new UserError(`Cannot ${action} (HTTP ${error.code}): ${message}`);
  }
  if (error instanceof UserError) return error;
  const reason = error instanceof Error ? `${(error as NodeJS.ErrnoException).code ?? ''} ${error.message}`.trim() : String(error);
  return new UserError(`Cannot reach the API server ${access.server} to ${action}: ${reason.split('\n')[0]}`, { cause: error });
}
