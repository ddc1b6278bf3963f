// A real BuildKit daemon for tests: buildkitd (built by scripts/install-go-tools.sh into
// .cache/bin at agent-image/versions.env's pin) as root with Debian's runc and the OCI worker, on
// 127.0.0.1 behind mTLS from the test CA, trusting the test registries over https
// (buildkitd.toml: BuildKit talks plain http to a loopback registry unless told otherwise).
// buildctl gets argument arrays; registry credentials reach it only through a private
// DOCKER_CONFIG folder, and it trusts the token server through SSL_CERT_FILE (buildctl, not the
// daemon, fetches registry tokens).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestCa } from './ca.js';
import { freePorts } from './http.js';
import { killOnExit, runTool, stopChild, type RunToolOptions, type ToolResult } from './processes.js';

const BIN_DIR = fileURLToPath(new URL('../../.cache/bin', import.meta.url));
export const BUILDKITD = path.join(BIN_DIR, 'buildkitd');
export const BUILDCTL = path.join(BIN_DIR, 'buildctl');
const RUNC = '/usr/sbin/runc';

export interface BuildkitClientCertificates {
  /** A folder holding `ca.pem`, `cert.pem` and `key.pem` (key 0600), the layout the build task's `buildkitCertificates` input expects. */
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
}

export interface BuildkitDaemon {
  /** `tcp://127.0.0.1:<port>`. */
  address: string;
  /** A client certificate the daemon trusts. */
  client: BuildkitClientCertificates;
  /** The daemon's state folder (for checks that nothing secret is stored there). */
  rootDir: string;
  logPath: string;
  /** `--addr … --tlscacert … --tlscert … --tlskey …` for buildctl. */
  connectionArgs(client?: BuildkitClientCertificates): string[];
  /** A further client certificate, from this CA or another. */
  issueClient(name: string, ca?: TestCa): Promise<BuildkitClientCertificates>;
  /** Runs buildctl against the daemon. */
  buildctl(args: string[], options?: RunToolOptions): Promise<ToolResult>;
  stop(): Promise<void>;
}

export interface StartBuildkitOptions {
  ca: TestCa;
  /** Working folder: state, config, certificates and log go under it. */
  dir: string;
  /** Registries (`host:port`) the daemon reaches over https, trusting the test CA. */
  registries?: string[];
  /**
   * The daemon's own certificate and the CA it requires client certificates from (e.g. those a
   * chart generated), instead of ones from `ca`; `serverName` is the name its certificate is for.
   */
  server?: { caFile: string; certFile: string; keyFile: string; serverName: string };
  /** The client certificate `buildctl()` and the readiness check use; default: one issued by `ca`. */
  client?: BuildkitClientCertificates;
  /** More buildkitd.toml (e.g. a chart's), appended to the registries' sections. */
  extraConfig?: string;
}

const STARTUP_TIMEOUT_MS = 30_000;

/** Environment for buildctl: credentials from `dockerConfigDir` (config.json), the token server trusted through SSL_CERT_FILE. */
export function buildctlEnvironment(ca: TestCa, dockerConfigDir?: string): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: dockerConfigDir ?? process.env.HOME, SSL_CERT_FILE: ca.caCertPath, ...(dockerConfigDir ? { DOCKER_CONFIG: dockerConfigDir } : {}) };
}

/** A private DOCKER_CONFIG folder whose config.json is the given docker-format auth file. */
export async function dockerConfigFolder(parent: string, authFile: string): Promise<string> {
  const dir = await mkdtemp(path.join(parent, 'docker-config-'));
  await writeFile(path.join(dir, 'config.json'), await readFile(authFile), { mode: 0o600 });
  return dir;
}

async function clientCertificates(ca: TestCa, dir: string, name: string): Promise<BuildkitClientCertificates> {
  const issued = await ca.issue(name, []);
  const folder = path.join(dir, name);
  await mkdir(folder, { recursive: true, mode: 0o700 });
  const files = { caFile: path.join(folder, 'ca.pem'), certFile: path.join(folder, 'cert.pem'), keyFile: path.join(folder, 'key.pem') };
  await writeFile(files.caFile, ca.caCertPem);
  await writeFile(files.certFile, issued.certPem);
  await writeFile(files.keyFile, issued.keyPem, { mode: 0o600 });
  return { dir: folder, ...files };
}

function toml(value: string): string {
  return JSON.stringify(value);
}

export async function startBuildkit(options: StartBuildkitOptions): Promise<BuildkitDaemon> {
  if (process.getuid?.() !== 0) throw new Error('buildkitd runs RUN steps with runc as root here; run the tests as root');
  const dir = options.dir;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const [port] = await freePorts(1);
  const address = `tcp://127.0.0.1:${port}`;
  const issued = options.server ? undefined : await options.ca.issue(`buildkitd-${port}`, ['127.0.0.1']);
  const server = options.server ?? { caFile: options.ca.caCertPath, certFile: issued!.certPath, keyFile: issued!.keyPath, serverName: undefined };
  const client = options.client ?? (await clientCertificates(options.ca, dir, `buildctl-${port}`));
  const rootDir = path.join(dir, 'state');
  const configPath = path.join(dir, 'buildkitd.toml');
  const registries = (options.registries ?? []).map((host) => `[registry.${toml(host)}]\n  http = false\n  insecure = false\n  ca = [${toml(options.ca.caCertPath)}]\n`);
  await writeFile(configPath, [...registries, options.extraConfig ?? ''].join('\n'));
  const logPath = path.join(dir, 'buildkitd.log');
  const log = await open(logPath, 'a', 0o600);
  let child: ChildProcess;
  try {
    // A CA given means client certificates are required (mTLS). No unix socket: only the TCP listener.
    child = spawn(
      BUILDKITD,
      [
        '--config', configPath, '--root', rootDir, '--addr', address,
        '--tlscacert', server.caFile, '--tlscert', server.certFile, '--tlskey', server.keyFile,
        '--oci-worker=true', '--containerd-worker=false', '--oci-worker-binary', RUNC, '--oci-worker-net', 'host',
      ],
      { stdio: ['ignore', log.fd, log.fd], env: { PATH: process.env.PATH } },
    );
  } finally {
    await log.close();
  }
  const forget = killOnExit(child);
  let exited = false;
  let spawnError: Error | undefined;
  child.once('exit', () => (exited = true));
  child.once('error', (error) => {
    spawnError = error;
    exited = true;
  });
  const serverName = server.serverName ? ['--tlsservername', server.serverName] : [];
  const connectionArgs = (certificates = client) => ['--addr', address, ...serverName, '--tlscacert', certificates.caFile, '--tlscert', certificates.certFile, '--tlskey', certificates.keyFile];
  const stop = async () => {
    forget();
    await stopChild(child, 10_000);
    await rm(rootDir, { recursive: true, force: true }).catch(() => undefined);
  };
  const daemon: BuildkitDaemon = {
    address,
    client,
    rootDir,
    logPath,
    connectionArgs,
    issueClient: (name, ca = options.ca) => clientCertificates(ca, dir, name),
    buildctl: (args, runOptions = {}) => runTool(BUILDCTL, [...connectionArgs(), ...args], { timeoutMs: 300_000, ...runOptions }),
    stop,
  };
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    if (exited) {
      forget();
      const tail = (await readFile(logPath, 'utf8').catch(() => '')).trim().split('\n').slice(-3).join(' | ');
      throw new Error(spawnError ? `cannot run ${BUILDKITD} (${spawnError.message}); run scripts/install-test-tools.sh` : `buildkitd exited during startup: ${tail}`);
    }
    const ready = await daemon.buildctl(['debug', 'workers'], { timeoutMs: 5_000 }).then(
      () => true,
      () => false,
    );
    if (ready) return daemon;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`buildkitd did not answer on ${address} within ${STARTUP_TIMEOUT_MS} ms; see ${logPath}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
