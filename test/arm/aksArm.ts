// Azure Resource Manager stand-in for the AKS operations PrivateAksDeploy calls, in front of the
// test control plane: listClusterUserCredential / listClusterAdminCredential (Microsoft.ContainerService
// 2026-04-01: `{"kubeconfigs":[{"name","value":<base64>}]}`; the user kubeconfig of an Entra-enabled
// cluster runs kubelogin, as AKS's does) and run-command (POST → 202 + Location; GET of the
// commandResults → 202 while running, then 200 with provisioningState, exitCode, logs capped at
// 512 kB). The command really runs: the context zip is unpacked with `unzip`, and bash runs the
// command with the built kubectl and helm, a kubeconfig holding the caller's clusterToken, like the
// command pod AKS starts — and, like that pod, it sees nothing of the caller's files: it runs in a
// mount namespace where the temp folder (the agent's temp folder, the tests' files) is an empty
// tmpfs holding only the unpacked context. ARM rules kept: Entra bearer for the management
// audience, RBAC before existence, ARM's error envelope.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type * as http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TestCa } from '../env/ca.js';
import type { EntraStandIn } from '../env/entra.js';
import { testToolPath } from '../env/environment.js';
import { bearerToken, readBody, requestUrl, sendJson, startServer, type RunningServer } from '../env/http.js';
import { runTool } from '../env/processes.js';
import { kubeToolPath, type ControlPlane } from '../kube/controlPlane.js';

export const ARM_MANAGEMENT_AUDIENCE = 'https://management.core.windows.net/';

/**
 * Runs `$3` in `$1/context` with the temp folder `$2` covered by an empty tmpfs, into which `$1`
 * (still reachable through the working directory, hence `--no-canonicalize`) is bound back as
 * `$2/run-command`.
 */
const ISOLATE = 'cd "$1" && mount -t tmpfs tmpfs "$2" && mkdir "$2/run-command" && mount --no-canonicalize --bind . "$2/run-command" && cd "$2/run-command/context" && exec bash -c "$3"';
export const RUN_COMMAND_LOG_CAP = 512 * 1024;

export interface AksArmOptions {
  ca: TestCa;
  entra: EntraStandIn;
  /** The cluster every managed cluster of this stand-in fronts. */
  controlPlane: ControlPlane;
}

export interface AksClusterEntry {
  /** Entra-enabled (kubelogin kubeconfig) or local accounts (admin credentials carry a client certificate). Default true. */
  entraEnabled?: boolean;
  /** `apiServerAccessProfile.disableRunCommand`. Default false. */
  disableRunCommand?: boolean;
  /** Kubeconfig returned by listClusterAdminCredential where local accounts are enabled. */
  adminKubeconfig?: string;
}

export interface RunCommandRecord {
  command: string;
  /** File names in the context zip. */
  files: string[];
  clusterToken: string;
}

export interface AksArmStandIn {
  /** `https://127.0.0.1:<port>/`, an AzureRM connection's URL. */
  url: string;
  subscriptionId: string;
  addCluster(resourceGroup: string, name: string, entry?: AksClusterEntry): void;
  /** Object ids that may call the cluster operations (the roles are not told apart here). */
  grant(objectId: string): void;
  /** Polls that answer 202 before a finished command's result is served. Default 1. */
  pollsBeforeResult: number;
  requests: { method: string; path: string; status: number }[];
  runCommands: RunCommandRecord[];
  stop(): Promise<void>;
}

class ArmFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface CommandResult {
  pollsLeft: number;
  done: Promise<{ exitCode: number; logs: string; startedAt: string; finishedAt: string }>;
}

export async function startAksArm(options: AksArmOptions): Promise<AksArmStandIn> {
  const subscriptionId = randomUUID();
  const clusters = new Map<string, AksClusterEntry>();
  const granted = new Set<string>();
  const results = new Map<string, CommandResult>();
  const key = (resourceGroup: string, name: string) => `${resourceGroup}/${name}`.toLowerCase();
  const tls = await options.ca.issue(`aks-arm-${randomUUID()}`, ['127.0.0.1', 'localhost']);

  function authenticate(req: http.IncomingMessage): string {
    const token = bearerToken(req);
    if (!token) throw new ArmFailure(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing.");
    let claims;
    try {
      claims = options.entra.verifyAccessToken(token);
    } catch (error) {
      throw new ArmFailure(401, 'InvalidAuthenticationToken', `The access token is invalid. (${String(error)})`);
    }
    if (claims.aud !== ARM_MANAGEMENT_AUDIENCE && claims.aud !== standIn.url) {
      throw new ArmFailure(401, 'InvalidAuthenticationTokenAudience', `The access token has been obtained for wrong audience or resource '${String(claims.aud)}'.`);
    }
    return String(claims.oid);
  }

  /** The kubeconfig `az aks get-credentials` would write, minus the kubelogin binary we never run. */
  function userKubeconfig(name: string, entry: AksClusterEntry): string {
    const cluster = { server: options.controlPlane.server, 'certificate-authority-data': Buffer.from(options.controlPlane.caPem).toString('base64') };
    const user = entry.entraEnabled === false
      ? { token: 'local-accounts-are-not-served-by-this-stand-in' }
      : {
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1beta1',
            command: 'kubelogin',
            args: ['get-token', '--login', 'devicecode', '--server-id', '6dae42f8-4368-4678-94ff-3960e28e3630', '--environment', 'AzurePublicCloud'],
            env: null,
            interactiveMode: 'IfAvailable',
            provideClusterInfo: false,
          },
        };
    return JSON.stringify({
      apiVersion: 'v1', kind: 'Config', 'current-context': name,
      clusters: [{ name, cluster }],
      contexts: [{ name, context: { cluster: name, user: `clusterUser_${name}` } }],
      users: [{ name: `clusterUser_${name}`, user }],
    });
  }

  async function startCommand(body: { command?: string; context?: string; clusterToken?: string }): Promise<CommandResult> {
    if (!body.command) throw new ArmFailure(400, 'InvalidParameter', 'The value of parameter command is invalid.');
    const dir = await mkdtemp(join(tmpdir(), 'aks-run-command-'));
    const context = join(dir, 'context');
    await mkdir(context);
    const files: string[] = [];
    if (body.context) {
      await writeFile(join(dir, 'context.zip'), Buffer.from(body.context, 'base64'));
      files.push(...(await runTool('unzip', ['-Z1', 'context.zip'], { cwd: dir })).stdout.split('\n').filter(Boolean));
      await runTool('unzip', ['-q', join(dir, 'context.zip')], { cwd: context });
      await rm(join(dir, 'context.zip'));
    }
    standIn.runCommands.push({ command: body.command, files, clusterToken: body.clusterToken ?? '' });
    // The command pod authenticates as the caller: its kubeconfig holds the clusterToken.
    await cp(await options.controlPlane.kubeconfigFor({ token: body.clusterToken ?? '' }), join(dir, 'kubeconfig'));
    const startedAt = new Date().toISOString();
    const done = new Promise<{ exitCode: number; logs: string; startedAt: string; finishedAt: string }>((resolve) => {
      const child = spawn('unshare', [...(process.getuid?.() === 0 ? [] : ['--user', '--map-root-user']), '--mount', '--', 'bash', '-c', ISOLATE, 'isolate', dir, tmpdir(), body.command!], {
        cwd: dir,
        env: {
          PATH: `${dirname(kubeToolPath('kubectl'))}:${dirname(testToolPath('helm'))}:/usr/bin:/bin`,
          KUBECONFIG: join(tmpdir(), 'run-command', 'kubeconfig'),
          HOME: join(tmpdir(), 'run-command'),
          HELM_CACHE_HOME: join(tmpdir(), 'run-command', 'helm'),
        },
      });
      let logs = '';
      const collect = (chunk: Buffer) => {
        logs += chunk.toString('utf8');
      };
      child.stdout.on('data', collect);
      child.stderr.on('data', collect);
      child.on('close', (code) => {
        void rm(dir, { recursive: true, force: true });
        resolve({ exitCode: code ?? 1, logs: logs.length > RUN_COMMAND_LOG_CAP ? logs.slice(logs.length - RUN_COMMAND_LOG_CAP) : logs, startedAt, finishedAt: new Date().toISOString() });
      });
    });
    return { pollsLeft: standIn.pollsBeforeResult, done };
  }

  async function route(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<number> {
    if (!url.searchParams.get('api-version')) throw new ArmFailure(400, 'MissingApiVersionParameter', 'The api-version query parameter (?api-version=) is required for all requests.');
    const objectId = authenticate(req);
    const match = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.ContainerService\/managedClusters\/([^/]+)\/(.+)$/i.exec(url.pathname);
    if (!match) throw new ArmFailure(404, 'InvalidResourceType', `The resource type could not be found for ${url.pathname}.`);
    const [, subscription, resourceGroup, name, operation] = match as unknown as [string, string, string, string, string];
    const scope = `/subscriptions/${subscription}/resourceGroups/${resourceGroup}/providers/Microsoft.ContainerService/managedClusters/${name}`;
    if (!granted.has(objectId)) {
      throw new ArmFailure(403, 'AuthorizationFailed', `The client '${objectId}' with object id '${objectId}' does not have authorization to perform action 'Microsoft.ContainerService/managedClusters/${operation.split('/')[0]}/action' over scope '${scope}' or the scope is invalid.`);
    }
    if (subscription !== subscriptionId) throw new ArmFailure(404, 'SubscriptionNotFound', `The subscription '${subscription}' could not be found.`);
    if (![...clusters.keys()].some((known) => known.startsWith(`${resourceGroup.toLowerCase()}/`))) {
      throw new ArmFailure(404, 'ResourceGroupNotFound', `Resource group '${resourceGroup}' could not be found.`);
    }
    const entry = clusters.get(key(resourceGroup, name));
    if (!entry) throw new ArmFailure(404, 'ResourceNotFound', `The Resource 'Microsoft.ContainerService/managedClusters/${name}' under resource group '${resourceGroup}' was not found.`);

    if (req.method === 'POST' && /^listClusterUserCredential$/i.test(operation)) {
      sendJson(res, 200, { kubeconfigs: [{ name: 'clusterUser', value: Buffer.from(userKubeconfig(name, entry)).toString('base64') }] });
      return 200;
    }
    if (req.method === 'POST' && /^listClusterAdminCredential$/i.test(operation)) {
      if (!entry.adminKubeconfig) throw new ArmFailure(400, 'BadRequest', 'Getting static credential is not allowed because this cluster is set to disable local accounts.');
      sendJson(res, 200, { kubeconfigs: [{ name: 'clusterAdmin', value: Buffer.from(entry.adminKubeconfig).toString('base64') }] });
      return 200;
    }
    if (req.method === 'POST' && /^runCommand$/i.test(operation)) {
      if (entry.disableRunCommand) throw new ArmFailure(400, 'OperationNotAllowed', 'Command execution is disabled for this cluster (apiServerAccessProfile.disableRunCommand).');
      const id = randomUUID().replace(/-/g, '');
      results.set(id, await startCommand(JSON.parse(await readBody(req)) as { command?: string; context?: string; clusterToken?: string }));
      res.writeHead(202, { Location: `${standIn.url.replace(/\/$/, '')}${scope}/commandResults/${id}?api-version=${url.searchParams.get('api-version')}`, 'Retry-After': '0', 'Content-Length': '0' });
      res.end();
      return 202;
    }
    const resultMatch = /^commandResults\/([^/]+)$/i.exec(operation);
    if (req.method === 'GET' && resultMatch) {
      const result = results.get(resultMatch[1]);
      if (!result) throw new ArmFailure(404, 'NotFound', `Command result '${resultMatch[1]}' was not found.`);
      const finished = await Promise.race([result.done, new Promise<undefined>((resolve) => setTimeout(resolve, 200, undefined))]);
      if (!finished || result.pollsLeft-- > 0) {
        res.writeHead(202, { Location: `${standIn.url.replace(/\/$/, '')}${url.pathname}${url.search}`, 'Retry-After': '0', 'Content-Length': '0' });
        res.end();
        return 202;
      }
      sendJson(res, 200, {
        id: resultMatch[1],
        properties: { provisioningState: 'Succeeded', exitCode: finished.exitCode, startedAt: finished.startedAt, finishedAt: finished.finishedAt, logs: finished.logs },
      });
      return 200;
    }
    throw new ArmFailure(405, 'MethodNotAllowed', `The stand-in does not serve ${req.method} ${url.pathname}.`);
  }

  const server: RunningServer = await startServer(async (req, res) => {
    const url = requestUrl(req);
    const record = { method: req.method ?? '', path: url.pathname, status: 0 };
    standIn.requests.push(record);
    try {
      record.status = await route(req, res, url);
    } catch (error) {
      if (!(error instanceof ArmFailure)) throw error;
      record.status = error.status;
      sendJson(res, error.status, { error: { code: error.code, message: error.message } });
    }
  }, tls);

  const standIn: AksArmStandIn = {
    url: `${server.url}/`,
    subscriptionId,
    pollsBeforeResult: 1,
    requests: [],
    runCommands: [],
    addCluster: (resourceGroup, name, entry = {}) => void clusters.set(key(resourceGroup, name), entry),
    grant: (objectId) => void granted.add(objectId),
    stop: () => server.stop(),
  };
  return standIn;
}
