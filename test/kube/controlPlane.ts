// A real Kubernetes control plane for the tests: etcd, kube-apiserver and
// kube-controller-manager, built by scripts/install-go-tools.sh and run on
// loopback. The API server serves TLS from the test CA, authenticates client
// certificates, service-account tokens and (optionally) Entra JWTs, and
// authorizes with Node + RBAC; Pod Security admission is on by default and
// enforces the namespace labels. There is no kubelet and no scheduler:
// test/kube/fakeKubelet.ts plays both for the namespaces a test names.
//
// Typical use, one control plane per test file:
//   const cluster = await startControlPlane({ dir });     // in before()
//   await cluster.createNamespace('apps', { podSecurity: 'restricted' });
//   …
//   await cluster.stop();                                  // in after()
import { generateKeyPair, randomUUID } from 'node:crypto';
import { access, mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { createTestCa, type TestCa } from '../env/ca.js';
import { createClientCa } from './clientCertificates.js';
import { KubeApiError, KubeClient, type KubeCredentials } from './kubeClient.js';
import { freePorts } from '../env/http.js';
import { runTool } from '../env/processes.js';
import { logTail, startServerProcess, type ServerProcess } from './serverProcess.js';

const generateKeyPairAsync = promisify(generateKeyPair);

const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
const KUBE_BIN_DIR = path.join(REPO_ROOT, '.cache', 'bin');

/** The audience AKS expects on Entra tokens (the "Azure Kubernetes Service AAD Server" application). */
export const AKS_AUDIENCE = '6dae42f8-4368-4678-94ff-3960e28e3630';

/** The issuer the API server writes into service-account tokens, as in a real cluster. */
export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';

/** Entra (or any OIDC issuer) whose JWTs the API server accepts as bearer tokens. */
export interface OidcIssuerOptions {
  /** The `iss` of the tokens; its `/.well-known/openid-configuration` must be served over HTTPS. */
  issuerUrl: string;
  /** The `aud` the tokens must carry, e.g. AKS_AUDIENCE. */
  audience: string;
  /** PEM of the CA that signed the issuer's serving certificate. */
  caPem: string;
  /** Claim that becomes the Kubernetes user name, unprefixed. Default `oid` (stable for users and service principals). */
  usernameClaim?: string;
  /** Claim that lists the Kubernetes groups, unprefixed. Default `groups`. */
  groupsClaim?: string;
}

export interface ControlPlaneOptions {
  /** An empty folder the caller owns (and removes): certificates, etcd data, logs, kubeconfigs. */
  dir: string;
  /** CA for the API server's serving certificate; default: a new test CA under `dir`. */
  ca?: TestCa;
  /** Trust this JWT issuer (structured authentication configuration). */
  oidc?: OidcIssuerOptions;
}

/** Who a kubeconfig or client acts as: a client-certificate user, or a bearer token. */
export type KubeIdentity = { user: string; groups?: string[] } | { token: string };

export type PodSecurityLevel = 'privileged' | 'baseline' | 'restricted';

export interface ControlPlane {
  /** `https://127.0.0.1:<port>` */
  server: string;
  /** PEM and path of the CA that signed the API server's serving certificate. */
  caPem: string;
  caCertPath: string;
  /** Kubeconfig for `kube-admin` in `system:masters` (client certificate); mode 0600. */
  adminKubeconfigPath: string;
  /** REST client acting as the admin. */
  admin: KubeClient;
  /** Logs of etcd, kube-apiserver and kube-controller-manager. */
  logDir: string;
  /** A REST client acting as `identity`; close() it when done. */
  clientFor(identity: KubeIdentity): Promise<KubeClient>;
  /** Writes a kubeconfig (mode 0600) acting as `identity` and returns its path. */
  kubeconfigFor(identity: KubeIdentity): Promise<string>;
  /**
   * Creates a namespace, labelled `pod-security.kubernetes.io/enforce=<podSecurity>` when given, and
   * waits for its `default` service account (pods are refused until the controller made it).
   */
  createNamespace(name: string, options?: { podSecurity?: PodSecurityLevel }): Promise<void>;
  /** Creates a service account (no rights beyond what RBAC bindings give it). */
  createServiceAccount(namespace: string, name: string): Promise<void>;
  /** A token for the service account from the TokenRequest API; audience defaults to the API server's. */
  mintServiceAccountToken(namespace: string, serviceAccount: string, options?: { audiences?: string[]; expirationSeconds?: number }): Promise<string>;
  /**
   * A folder laid out like `/var/run/secrets/kubernetes.io/serviceaccount` in a pod running as the
   * service account: `token` (0600), `ca.crt`, `namespace`. Returns its path.
   */
  writeInClusterFolder(namespace: string, serviceAccount: string): Promise<string>;
  /**
   * Runs the built kubectl (as the admin unless `kubeconfig` names another) and resolves with its
   * stdout; rejects with a ToolError (exit code, stderr) on a non-zero exit. `timeoutMs` defaults to 60 s.
   */
  kubectl(args: string[], options?: { kubeconfig?: string; timeoutMs?: number }): Promise<string>;
  /** Stops the controller manager, the API server and etcd. */
  stop(): Promise<void>;
}

/** Path of a binary built by scripts/install-go-tools.sh (`kubectl`, `kube-apiserver`, `etcd`, …). */
export function kubeToolPath(name: string): string {
  return path.join(KUBE_BIN_DIR, name);
}

async function requireTool(name: string): Promise<string> {
  const binary = kubeToolPath(name);
  try {
    await access(binary);
  } catch {
    throw new Error(`${binary} is missing; run scripts/install-go-tools.sh`);
  }
  return binary;
}

async function writeSecretFile(file: string, content: string): Promise<void> {
  await writeFile(file, content, { mode: 0o600 });
}

function kubeconfig(server: string, caPem: string, user: Record<string, string>): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } }],
    users: [{ name: 'test', user }],
    contexts: [{ name: 'test', context: { cluster: 'test', user: 'test' } }],
    'current-context': 'test',
  }, null, 2);
}

/**
 * Polls `check` until it answers true. Throws, with the end of the processes' logs, on timeout or
 * as soon as one of `processes` has exited.
 */
async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, processes: ServerProcess[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    const exited = processes.find((child) => child.exitStatus() !== undefined);
    if (exited || Date.now() > deadline) {
      const reason = exited ? `${exited.name} exited` : `it did not happen within ${timeoutMs / 1000} s`;
      throw new Error(`waiting for ${what} failed: ${reason}\n${await explain(...processes)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function authenticationConfig(oidc: OidcIssuerOptions): string {
  return JSON.stringify({
    apiVersion: 'apiserver.config.k8s.io/v1',
    kind: 'AuthenticationConfiguration',
    jwt: [{
      issuer: { url: oidc.issuerUrl, audiences: [oidc.audience], certificateAuthority: oidc.caPem },
      claimMappings: {
        username: { claim: oidc.usernameClaim ?? 'oid', prefix: '' },
        groups: { claim: oidc.groupsClaim ?? 'groups', prefix: '' },
      },
    }],
  }, null, 2);
}

/** Starts etcd, kube-apiserver and kube-controller-manager; resolves once pods can be created. */
export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const [etcdBinary, apiServerBinary, controllerManagerBinary, kubectlBinary] = await Promise.all(
    ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kubectl'].map(requireTool),
  );
  const dir = path.resolve(options.dir);
  const pkiDir = path.join(dir, 'pki');
  const logDir = path.join(dir, 'logs');
  const kubeconfigDir = path.join(dir, 'kubeconfigs');
  await Promise.all([pkiDir, logDir, kubeconfigDir].map((folder) => mkdir(folder, { recursive: true, mode: 0o700 })));

  const [ca, clientCa, serviceAccountKey, [etcdPort, etcdPeerPort, apiServerPort]] = await Promise.all([
    options.ca ?? createTestCa(path.join(pkiDir, 'serving-ca')),
    createClientCa(path.join(pkiDir, 'client-ca')),
    generateKeyPairAsync('ec', {
      namedCurve: 'P-256',
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    }),
    freePorts(3),
  ]);
  const server = `https://127.0.0.1:${apiServerPort}`;
  const [servingCert, adminCert, controllerManagerCert] = await Promise.all([
    // The names pods and in-cluster clients use for the API server, besides loopback. A shared CA
    // issues each name once, hence the random part.
    ca.issue(`kube-apiserver-${randomUUID()}`, ['127.0.0.1', 'localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local']),
    clientCa.issue('admin', 'kube-admin', ['system:masters']),
    // In system:masters because its controllers share its credentials (see --use-service-account-credentials).
    clientCa.issue('kube-controller-manager', 'system:kube-controller-manager', ['system:masters']),
  ]);
  const serviceAccountKeyPath = path.join(pkiDir, 'service-account.key');
  const serviceAccountPublicKeyPath = path.join(pkiDir, 'service-account.pub');
  await writeSecretFile(serviceAccountKeyPath, serviceAccountKey.privateKey);
  await writeFile(serviceAccountPublicKeyPath, serviceAccountKey.publicKey);

  const adminKubeconfigPath = path.join(kubeconfigDir, 'admin.kubeconfig');
  const controllerManagerKubeconfigPath = path.join(kubeconfigDir, 'kube-controller-manager.kubeconfig');
  await writeSecretFile(adminKubeconfigPath, kubeconfig(server, ca.caCertPem, { 'client-certificate': adminCert.certPath, 'client-key': adminCert.keyPath }));
  await writeSecretFile(controllerManagerKubeconfigPath, kubeconfig(server, ca.caCertPem, {
    'client-certificate': controllerManagerCert.certPath,
    'client-key': controllerManagerCert.keyPath,
  }));

  const processes: ServerProcess[] = [];
  const admin = new KubeClient({ server, caPem: ca.caCertPem, clientCert: adminCert });
  const stopAll = async (): Promise<void> => {
    admin.close();
    // Controllers first, storage last, so nothing logs errors about a vanished dependency.
    for (const child of [...processes].reverse()) await child.stop();
  };

  try {
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const etcdPeerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    const etcd = startServerProcess('etcd', etcdBinary, [
      '--name=test',
      `--data-dir=${path.join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${etcdPeerUrl}`,
      `--initial-advertise-peer-urls=${etcdPeerUrl}`,
      `--initial-cluster=test=${etcdPeerUrl}`,
      // Throwaway data: durability costs fsyncs the tests do not need.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ], path.join(logDir, 'etcd.log'));
    processes.push(etcd);
    await waitFor('etcd start', async () => (await fetch(`${etcdUrl}/health`)).ok, 30_000, [etcd]);

    const apiServerArgs = [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiServerPort}`,
      `--cert-dir=${pkiDir}`,
      `--tls-cert-file=${servingCert.certPath}`,
      `--tls-private-key-file=${servingCert.keyPath}`,
      `--client-ca-file=${clientCa.caCertPath}`,
      '--authorization-mode=Node,RBAC',
      `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
      `--service-account-key-file=${serviceAccountPublicKeyPath}`,
      `--service-account-signing-key-file=${serviceAccountKeyPath}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      // Privileged pods must be refused by Pod Security admission, per namespace, not by this global switch.
      '--allow-privileged=true',
      '--profiling=false',
    ];
    if (options.oidc) {
      const authenticationConfigPath = path.join(dir, 'authentication-config.json');
      await writeFile(authenticationConfigPath, authenticationConfig(options.oidc));
      apiServerArgs.push(`--authentication-config=${authenticationConfigPath}`);
    }
    const apiServer = startServerProcess('kube-apiserver', apiServerBinary, apiServerArgs, path.join(logDir, 'kube-apiserver.log'));
    processes.push(apiServer);

    await waitFor('kube-apiserver readiness', async () => {
      await admin.request('GET', '/readyz');
      return true;
    }, 60_000, [apiServer, etcd]);
    // Started once the API server is ready: kube-controller-manager gives up after about 10 s of
    // waiting for a healthy API server, which a loaded machine can take longer than to start.
    const controllerManager = startServerProcess('kube-controller-manager', controllerManagerBinary, [
      `--kubeconfig=${controllerManagerKubeconfigPath}`,
      // Serves no health endpoint: nothing here scrapes it, and it would need a port of its own.
      '--secure-port=0',
      '--leader-elect=false',
      // One identity for all controllers. Per-controller service accounts (kubeadm's choice) cost
      // ~5 s of start-up for tokens the tests never look at; users' RBAC is the same either way.
      '--use-service-account-credentials=false',
      `--service-account-private-key-file=${serviceAccountKeyPath}`,
      `--root-ca-file=${ca.caCertPath}`,
      // No kubelet posts node heartbeats: the node lifecycle controller would taint the fake node and evict its pods.
      '--controllers=*,-node-lifecycle-controller',
    ], path.join(logDir, 'kube-controller-manager.log'));
    processes.push(controllerManager);

    // The default namespace's service account proves the controllers run with working credentials.
    await waitFor('kube-controller-manager start', async () => (await admin.get('/api/v1/namespaces/default/serviceaccounts/default')) !== undefined,
      60_000, [controllerManager, apiServer, etcd]);
  } catch (error) {
    await stopAll();
    throw error;
  }

  let kubeconfigCount = 0;
  let inClusterCount = 0;

  async function clientFor(identity: KubeIdentity): Promise<KubeClient> {
    const credentials: KubeCredentials = { server, caPem: ca.caCertPem };
    if ('token' in identity) credentials.token = identity.token;
    else credentials.clientCert = await clientCa.issue(`user-${++kubeconfigCount}`, identity.user, identity.groups ?? []);
    return new KubeClient(credentials);
  }

  async function kubeconfigFor(identity: KubeIdentity): Promise<string> {
    const file = path.join(kubeconfigDir, `user-${++kubeconfigCount}.kubeconfig`);
    let user: Record<string, string>;
    if ('token' in identity) {
      user = { token: identity.token };
    } else {
      const cert = await clientCa.issue(`user-${kubeconfigCount}`, identity.user, identity.groups ?? []);
      user = { 'client-certificate': cert.certPath, 'client-key': cert.keyPath };
    }
    await writeSecretFile(file, kubeconfig(server, ca.caCertPem, user));
    return file;
  }

  async function createNamespace(name: string, namespaceOptions: { podSecurity?: PodSecurityLevel } = {}): Promise<void> {
    const labels: Record<string, string> = {};
    if (namespaceOptions.podSecurity) {
      labels['pod-security.kubernetes.io/enforce'] = namespaceOptions.podSecurity;
      labels['pod-security.kubernetes.io/enforce-version'] = 'latest';
    }
    await admin.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
    await waitFor(`service account ${name}/default`, async () => (await admin.get(`/api/v1/namespaces/${name}/serviceaccounts/default`)) !== undefined,
      30_000, processes);
  }

  async function createServiceAccount(namespace: string, name: string): Promise<void> {
    await admin.request('POST', `/api/v1/namespaces/${namespace}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name } });
  }

  async function mintServiceAccountToken(namespace: string, serviceAccount: string, tokenOptions: { audiences?: string[]; expirationSeconds?: number } = {}): Promise<string> {
    const answer = await admin.request<{ status: { token: string } }>('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { audiences: tokenOptions.audiences ?? [], expirationSeconds: tokenOptions.expirationSeconds ?? 3600 },
    });
    return answer.status.token;
  }

  async function writeInClusterFolder(namespace: string, serviceAccount: string): Promise<string> {
    const folder = path.join(dir, 'in-cluster', `${namespace}-${serviceAccount}-${++inClusterCount}`);
    await mkdir(folder, { recursive: true, mode: 0o700 });
    await writeSecretFile(path.join(folder, 'token'), await mintServiceAccountToken(namespace, serviceAccount));
    await writeFile(path.join(folder, 'ca.crt'), ca.caCertPem);
    await writeFile(path.join(folder, 'namespace'), namespace);
    return folder;
  }

  async function kubectl(args: string[], kubectlOptions: { kubeconfig?: string; timeoutMs?: number } = {}): Promise<string> {
    const kubeconfigPath = kubectlOptions.kubeconfig ?? adminKubeconfigPath;
    const { stdout } = await runTool(kubectlBinary, [`--kubeconfig=${kubeconfigPath}`, ...args], { timeoutMs: kubectlOptions.timeoutMs ?? 60_000 });
    return stdout;
  }

  return {
    server,
    caPem: ca.caCertPem,
    caCertPath: ca.caCertPath,
    adminKubeconfigPath,
    admin,
    logDir,
    clientFor,
    kubeconfigFor,
    createNamespace,
    createServiceAccount,
    mintServiceAccountToken,
    writeInClusterFolder,
    kubectl,
    stop: stopAll,
  };
}

/** Why a start-up wait failed: which processes exited, and the end of their logs. */
async function explain(...children: ServerProcess[]): Promise<string> {
  const parts = await Promise.all(children.map(async (child) => {
    const status = child.exitStatus();
    return `${child.name} ${status === undefined ? 'is running' : `exited (${status})`}; ${child.logPath} ends with:\n${await logTail(child.logPath)}`;
  }));
  return parts.join('\n');
}

export { KubeApiError };
