// The helm CLI, from PATH (the agent image ships it). Arguments are built as arrays from typed
// options and never carry a secret: helm reads its registry login and the overrides from files with
// mode 0600, and its cluster credential from the task through the kubeconfig's exec plug-in, all
// in a folder removed afterwards.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isMap, parseDocument, stringify } from 'yaml';
import { runCli } from '../cli.js';
import { InputError, UserError } from '../errors.js';
import type { Logger } from '../log.js';
import type { EnvironmentChanges } from './helmNetwork.js';

export interface HelmReleaseOptions {
  releaseName: string;
  namespace: string;
  /** `oci://…`, a chart folder or a packaged `.tgz`. */
  chart: string;
  chartVersion?: string;
  valueFiles: string[];
  /** `key.path=value` lines, written to a values file that comes after `valueFiles`. */
  overrides: string[];
  /** Roll back a failed upgrade (and delete a failed first install). */
  atomic: boolean;
  /** How long helm waits for the release's workloads (it always waits). */
  timeoutSeconds: number;
  createNamespace: boolean;
}

/** Files helm reads instead of flags with secrets; all in the caller's private folder. */
interface HelmFiles {
  /** Absent in a run-command pod, which has its own. */
  kubeconfig?: string;
  /** docker config.json-format registry logins; absent where no registry login is needed. */
  registryConfig?: string;
  /** Values file holding `overrides`, when there are any. */
  overridesFile?: string;
}

/** `helm upgrade --install` with the release JSON on stdout (`-o json`) so the revision can be read. */
export function helmUpgradeArgs(options: HelmReleaseOptions, files: HelmFiles): string[] {
  const args = ['upgrade', '--install', options.releaseName, options.chart, '--namespace', options.namespace, '--output', 'json'];
  if (options.chartVersion) args.push('--version', options.chartVersion);
  if (options.createNamespace) args.push('--create-namespace');
  if (options.atomic) args.push('--atomic');
  args.push('--wait', '--wait-for-jobs');
  args.push('--timeout', `${options.timeoutSeconds}s`);
  for (const file of options.valueFiles) args.push('--values', file);
  if (files.overridesFile) args.push('--values', files.overridesFile);
  args.push(...helmConnectionArgs(files));
  return args;
}

/** `helm pull` of an OCI chart into `destination` (for runCommand, whose pod cannot log in to the registry). */
export function helmPullArgs(chart: string, version: string | undefined, destination: string, registryConfig: string): string[] {
  const args = ['pull', chart, '--destination', destination];
  if (version) args.push('--version', version);
  args.push('--registry-config', registryConfig);
  return args;
}

function helmConnectionArgs(files: HelmFiles): string[] {
  const args: string[] = [];
  if (files.kubeconfig) args.push('--kubeconfig', files.kubeconfig);
  if (files.registryConfig) args.push('--registry-config', files.registryConfig);
  return args;
}

/**
 * Turns `key.path=value` lines into a values document, as `--set` reads them: dots nest, `\.`
 * is a literal dot, and the value is a YAML scalar (`true`, `3`, `"text"`). Kept out of argv
 * because overrides often carry connection strings and passwords.
 */
export function overridesToValues(lines: readonly string[]): string {
  const document = parseDocument('{}');
  for (const line of lines) {
    const equals = line.indexOf('=');
    if (equals <= 0) throw new InputError('overrides', `'${line.split('=')[0]}…' is not key=value.`);
    const path = line.slice(0, equals).trim().split(/(?<!\\)\./).map((part) => part.replace(/\\\./g, '.'));
    if (path.some((part) => !part)) throw new InputError('overrides', `'${line.slice(0, equals)}' has an empty key segment.`);
    const raw = line.slice(equals + 1);
    const value: unknown = raw === '' ? '' : parseDocument(raw).toJS();
    document.setIn(path, document.createNode(value));
  }
  if (!isMap(document.contents)) throw new Error('overrides document is not a mapping');
  return stringify(document.toJS());
}

export async function writeOverridesFile(folder: string, overrides: readonly string[]): Promise<string | undefined> {
  if (overrides.length === 0) return undefined;
  const path = join(folder, 'overrides.yaml');
  await writeFile(path, overridesToValues(overrides), { mode: 0o600 });
  return path;
}

interface HelmRunOptions {
  /** Private folder for helm's cache, config and data homes and client-go's cache, so nothing leaks between jobs or into the agent user's home. */
  home: string;
  logger: Logger;
  /** Default `helm` from PATH. */
  helmPath?: string;
  /** Changes to the inherited environment (the agent's CA and proxy, helmNetwork.ts). */
  env?: EnvironmentChanges;
  /** Aborting stops helm: SIGTERM, which helm answers by failing the release cleanly, then SIGKILL after HELM_STOP_GRACE_MS. */
  signal?: AbortSignal;
}

/** How long a stopped helm may take to record the release as failed before it is killed; well inside the agent's 7.5 s between SIGINT and SIGTERM. */
const HELM_STOP_GRACE_MS = 3000;

/** helm ran and failed (as opposed to not starting at all). */
export class HelmError extends UserError {}

/** Runs helm; stderr goes to the log line by line, stdout is returned. Rejects with helm's own error line. */
export async function runHelm(args: string[], options: HelmRunOptions): Promise<string> {
  const helm = options.helmPath ?? 'helm';
  options.logger.debug(`${helm} ${args.join(' ')}`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HELM_CACHE_HOME: join(options.home, 'cache'),
    HELM_CONFIG_HOME: join(options.home, 'config'),
    HELM_DATA_HOME: join(options.home, 'data'),
    // client-go's discovery cache, otherwise in ~/.kube/cache.
    KUBECACHEDIR: join(options.home, 'kube-cache'),
  };
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  const { code, stdout, stderr } = await runCli(helm, args, {
    env,
    onStderrLine: (line) => options.logger.info(`helm: ${line}`),
    signal: options.signal,
    stopSignal: 'SIGTERM',
    stopGraceMs: HELM_STOP_GRACE_MS,
    notFound: `helm was not found on PATH (${helm}); install helm on the agent or use the agent image, which ships it.`,
  });
  options.signal?.throwIfAborted();
  if (code !== 0) {
    const errorLine = stderr.split('\n').reverse().find((line) => line.startsWith('Error:')) ?? stderr.trim().split('\n').at(-1) ?? `exit code ${code}`;
    throw new HelmError(`helm ${args[0]} failed: ${errorLine.replace(/^Error:\s*/, '')}`);
  }
  return stdout;
}

/** The revision in helm's release JSON (`-o json`). */
export function releaseRevision(stdout: string): number {
  try {
    const release = JSON.parse(stdout) as { version?: number };
    if (typeof release.version === 'number') return release.version;
  } catch {
    // fall through to the error below
  }
  throw new UserError(`helm did not print the release as JSON; got: ${stdout.slice(0, 200)}`);
}
