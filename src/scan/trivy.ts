// The Trivy CLI (the agent image ships it, pinned and checksummed). Arguments are built as arrays
// from typed options and never carry a secret: registry credentials reach Trivy through a docker
// config.json (mode 0600) in the run's private folder, named by DOCKER_CONFIG; the proxy through
// HTTPS_PROXY; extra CAs through `--cacert` (added to the system pool). Trivy runs in that private
// folder, so no `.trivyignore` or `trivy.yaml` of the working directory is picked up by accident.
import { runCli } from '../cli.js';
import { UserError } from '../errors.js';
import type { ProxySettings } from '../http/transport.js';
import type { Logger } from '../log.js';

/** What Trivy scans: an image in a registry (by digest), or an image on disk. */
export type TrivyInput =
  | { kind: 'registry'; reference: string }
  /** An OCI image layout folder or a docker save tarball (gzip allowed); OCI archives are unpacked to a layout first. */
  | { kind: 'file'; path: string };

export interface TrivyImageScan {
  input: TrivyInput;
  /** Private, empty at the start: the databases Trivy downloads land here, and are read back for their age. */
  cacheDir: string;
  /** `host/repository:tag` of the vulnerability database artifact. */
  databaseRepository: string;
  /** `host/repository:tag` of the Java database artifact (fetched only for images with jars). */
  javaDatabaseRepository: string;
  /** Where the JSON report goes. */
  outputPath: string;
  ignoreUnfixed: boolean;
  /** A `.trivyignore` file. */
  ignoreFile?: string;
  /** PEM bundle of extra trusted CAs. */
  caFile?: string;
  /** Trivy's own bound on the whole scan, downloads included. */
  timeoutSeconds: number;
}

/**
 * `trivy image` for the gate: vulnerabilities only (secret and misconfiguration scanning are other
 * tools' jobs and cost time), every severity (the gate filters, the report shows all), JSON out,
 * and no call home (version check, telemetry), which a private network would block anyway.
 */
export function trivyImageArgs(scan: TrivyImageScan): string[] {
  const args = [
    'image',
    '--scanners', 'vuln',
    '--format', 'json',
    '--output', scan.outputPath,
    '--cache-dir', scan.cacheDir,
    '--db-repository', scan.databaseRepository,
    '--java-db-repository', scan.javaDatabaseRepository,
    '--timeout', `${scan.timeoutSeconds}s`,
    '--skip-version-check',
    '--disable-telemetry',
    '--no-progress',
  ];
  if (scan.ignoreUnfixed) args.push('--ignore-unfixed');
  if (scan.ignoreFile) args.push('--ignorefile', scan.ignoreFile);
  if (scan.caFile) args.push('--cacert', scan.caFile);
  if (scan.input.kind === 'file') args.push('--input', scan.input.path);
  // Only the registry: without this Trivy first looks for a Docker, containerd and Podman daemon.
  else args.push('--image-src', 'remote', scan.input.reference);
  return args;
}

// Inherited settings that would change what Trivy does behind the task's back: credentials and
// options from TRIVY_* variables (flags above win over some, not all), and other credential stores.
const INHERITED_BUT_IGNORED = /^(TRIVY_.*|DOCKER_CONFIG|REGISTRY_AUTH_FILE|DOCKER_AUTH_CONFIG)$/i;
const PROXY_VARIABLES = /^(HTTPS?_PROXY|NO_PROXY|ALL_PROXY)$/i;

export interface TrivyEnvironmentOptions {
  /** Folder holding config.json. */
  dockerConfig: string;
  /** Private scratch folder: Trivy unpacks downloads under TMPDIR. */
  tempDir: string;
  /** The agent's proxy; when set it replaces any proxy variables the agent process has. */
  proxy?: ProxySettings;
  /** Every registry host Trivy will contact, to decide which go around the proxy. */
  hosts: readonly string[];
}

/** The environment Trivy runs with: the agent's, minus Trivy and credential settings, plus ours. */
export function trivyEnvironment(base: NodeJS.ProcessEnv, options: TrivyEnvironmentOptions): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(base)) {
    if (value === undefined || INHERITED_BUT_IGNORED.test(name)) continue;
    if (options.proxy && PROXY_VARIABLES.test(name)) continue;
    env[name] = value;
  }
  env.DOCKER_CONFIG = options.dockerConfig;
  env.TMPDIR = options.tempDir;
  if (options.proxy) {
    const proxyUrl = new URL(options.proxy.url);
    if (options.proxy.username) proxyUrl.username = encodeURIComponent(options.proxy.username);
    if (options.proxy.password) proxyUrl.password = encodeURIComponent(options.proxy.password);
    env.HTTPS_PROXY = proxyUrl.href;
    // The agent's bypass list holds regular expressions; Go's NO_PROXY takes host names, so the
    // expressions are applied here to the hosts Trivy will contact.
    const bypass = (options.proxy.bypass ?? []).map((pattern) => new RegExp(pattern, 'i'));
    const direct = options.hosts.filter((host) => bypass.some((pattern) => pattern.test(host.replace(/:\d+$/, '')) || pattern.test(`https://${host}/`)));
    if (direct.length > 0) env.NO_PROXY = direct.map((host) => host.replace(/:\d+$/, '')).join(',');
  }
  return env;
}

/** Trivy exited non-zero; `fatal` is its own error line. */
export class TrivyError extends UserError {
  constructor(
    readonly fatal: string,
    readonly stderr: string,
  ) {
    super(`Trivy failed: ${fatal}`);
  }
}

export interface RunTrivyOptions {
  /** Default `trivy` from PATH. */
  trivyPath?: string;
  env: Record<string, string>;
  cwd: string;
  logger: Logger;
  /** Kill Trivy if it has not finished by then (its own --timeout should end it first). */
  killAfterMs: number;
  /** Stops Trivy early: the run is already known to fail. */
  signal?: AbortSignal;
}

/** How long a stopped Trivy may take to end before it is killed. */
const TRIVY_STOP_GRACE_MS = 3000;

/** Runs Trivy; its log lines go to the task log as they come. Rejects with a TrivyError. */
export async function runTrivy(args: string[], options: RunTrivyOptions): Promise<void> {
  const trivy = options.trivyPath ?? 'trivy';
  options.logger.debug(`${trivy} ${args.join(' ')}`);
  const relay = (line: string) => options.logger.info(`trivy: ${line}`);
  const { code, stderr, timedOut } = await runCli(trivy, args, {
    cwd: options.cwd,
    env: options.env,
    onStderrLine: relay,
    onStdoutLine: relay,
    signal: options.signal,
    stopSignal: 'SIGTERM',
    stopGraceMs: TRIVY_STOP_GRACE_MS,
    killAfterMs: options.killAfterMs,
    notFound: `trivy was not found (${trivy}); use the agent image, which ships it, or put trivy on the agent's PATH.`,
  });
  if (code === 0) return;
  if (options.signal?.aborted) throw new TrivyError('it was stopped', stderr);
  if (timedOut) throw new TrivyError(`it did not finish within ${Math.round(options.killAfterMs / 1000)} s and was stopped`, stderr);
  throw new TrivyError(fatalLine(stderr) ?? `exit code ${code}`, stderr);
}

/** Trivy ends with `<time> FATAL <message>`; the message is what went wrong. */
function fatalLine(stderr: string): string | undefined {
  const line = stderr.split('\n').reverse().find((candidate) => /\bFATAL\b/.test(candidate));
  return line?.replace(/^.*?\bFATAL\b\s*/, '').replace(/^Fatal error\s*/, '').trim();
}
