// The real KEDA operator (github.com/kedacore/keda/v2/cmd/operator, built by
// scripts/install-go-tools.sh) run out of cluster against the test API server: its CRDs
// applied server-side, its own RBAC (config/rbac) bound to a `keda-operator` service account it
// acts as, the namespace and certificate folder it expects in a pod, and SSL_CERT_FILE trusting the
// test CA, so its scalers reach the Azure DevOps stand-in over TLS.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { access, copyFile, mkdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestCa } from '../env/ca.js';
import { freePorts, request } from '../env/http.js';
import { killOnExit, runTool, stopChild } from '../env/processes.js';
import type { ControlPlane } from '../kube/controlPlane.js';
import { kubeToolPath } from '../kube/controlPlane.js';
import { logTail } from '../kube/serverProcess.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FETCH_KEDA_CRDS = path.join(REPO_ROOT, 'scripts/fetch-keda-crds.sh');

/** The namespace KEDA's RBAC (config/rbac/role_binding.yaml) names for its operator. */
export const KEDA_NAMESPACE = 'keda';

export interface KedaOperator {
  logPath: string;
  /** The end of the operator's log, for failure messages. */
  logTail(lines?: number): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Applies KEDA's CRDs (server-side: the ScaledJob CRD is too large for client-side apply's
 * annotation) and waits until they are served. Returns the folder they came from.
 */
export async function installKedaCrds(cluster: ControlPlane): Promise<string> {
  const crdDir = (await runTool('bash', [FETCH_KEDA_CRDS], { timeoutMs: 600_000 })).stdout.trim();
  await cluster.kubectl(['apply', '--server-side', `--filename=${crdDir}`]);
  await cluster.kubectl(['wait', '--for=condition=Established', '--timeout=60s', `--filename=${crdDir}`]);
  return crdDir;
}

/**
 * Starts the operator as the `keda-operator` service account with KEDA's own ClusterRole and Role.
 * Resolves once its health endpoint answers; the ScaledJob controller then reconciles on its own.
 */
export async function startKedaOperator(cluster: ControlPlane, options: { dir: string; ca: TestCa; crdDir: string }): Promise<KedaOperator> {
  const binary = kubeToolPath('keda-operator');
  await access(binary).catch(() => {
    throw new Error(`${binary} is missing; run scripts/install-go-tools.sh`);
  });
  await cluster.createNamespace(KEDA_NAMESPACE);
  await cluster.createServiceAccount(KEDA_NAMESPACE, 'keda-operator');
  // scripts/fetch-keda-crds.sh puts KEDA's RBAC of the same release in .cache/keda-rbac/<version>.
  await cluster.kubectl(['apply', `--filename=${path.join(options.crdDir, '..', '..', 'keda-rbac', path.basename(options.crdDir))}`]);
  const kubeconfig = await cluster.kubeconfigFor({ token: await cluster.mintServiceAccountToken(KEDA_NAMESPACE, 'keda-operator') });

  // The gRPC metrics service (for KEDA's metrics adapter, unused here) serves TLS from this folder.
  const certDir = path.join(options.dir, 'keda-certs');
  await mkdir(certDir, { recursive: true, mode: 0o700 });
  const serving = await options.ca.issue('keda-operator', ['127.0.0.1', 'localhost']);
  await Promise.all([
    copyFile(options.ca.caCertPath, path.join(certDir, 'ca.crt')),
    copyFile(serving.certPath, path.join(certDir, 'tls.crt')),
    copyFile(serving.keyPath, path.join(certDir, 'tls.key')),
  ]);

  const [probePort, metricsServicePort] = await freePorts(2);
  const logPath = path.join(options.dir, 'keda-operator.log');
  const logFd = openSync(logPath, 'a', 0o600);
  const child = spawn(binary, [
    `--kubeconfig=${kubeconfig}`,
    '--leader-elect=false',
    '--enable-prometheus-metrics=false',
    '--metrics-bind-address=0',
    `--health-probe-bind-address=127.0.0.1:${probePort}`,
    `--metrics-service-bind-address=127.0.0.1:${metricsServicePort}`,
    `--cert-dir=${certDir}`,
    `--ca-dir=${path.join(options.dir, 'no-extra-ca')}`,
    '--zap-log-level=info',
  ], {
    stdio: ['ignore', logFd, logFd],
    env: {
      PATH: process.env.PATH,
      // What KEDA's Deployment sets from the pod: every namespace is watched, and cluster-wide
      // objects (its secrets, leases) live in its own.
      WATCH_NAMESPACE: '',
      KEDA_CLUSTER_OBJECT_NAMESPACE: KEDA_NAMESPACE,
      POD_NAMESPACE: KEDA_NAMESPACE,
      // Go's TLS roots on Linux: the test CA alone, which signs the Azure DevOps stand-in.
      SSL_CERT_FILE: options.ca.caCertPath,
      KEDA_HTTP_DEFAULT_TIMEOUT: '10000',
    },
  });
  closeSync(logFd);
  const forget = killOnExit(child);
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = signal ?? String(code);
    forget();
  });

  const deadline = Date.now() + 60_000;
  for (;;) {
    const ready = await request(`http://127.0.0.1:${probePort}/readyz`).then((answer) => answer.status === 200, () => false);
    if (ready) break;
    if (exited !== undefined || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the KEDA operator ${exited === undefined ? 'did not become ready within 60 s' : `exited (${exited})`}; ${logPath} ends with:\n${await logTail(logPath, 30)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    logPath,
    logTail: (lines = 40) => logTail(logPath, lines),
    stop: () => stopChild(child, 5000),
  };
}

/** The KEDA release the wrapper module pins (what the operator was built from). */
export async function kedaVersion(): Promise<string> {
  const goMod = await readFile(path.join(REPO_ROOT, 'scripts/tools/keda/go.mod'), 'utf8');
  const version = /^\s*github\.com\/kedacore\/keda\/v2 (v\S+)/m.exec(goMod)?.[1];
  if (!version) throw new Error('scripts/tools/keda/go.mod requires no github.com/kedacore/keda/v2');
  return version;
}
