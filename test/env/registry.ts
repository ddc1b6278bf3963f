// The real registry: distribution 2.8 (`/usr/bin/docker-registry` from Debian) with TLS from the test CA,
// token auth trusting the ACR token server stand-in, filesystem storage in a temp dir and deletes enabled.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import * as https from 'node:https';
import * as path from 'node:path';
import { stringify } from 'yaml';
import type { AcrTokenServer } from './acr.js';
import type { TestCa } from './ca.js';
import { killOnExit, stopChild } from './processes.js';
import { freePorts } from './http.js';

export const REGISTRY_BINARY = '/usr/bin/docker-registry';

/** What the registry needs of the token server it trusts. */
export type RegistryTokenIssuer = Pick<AcrTokenServer, 'realm' | 'issuer' | 'rootCertPath' | 'registerService'>;

export interface StartRegistryOptions {
  ca: TestCa;
  tokenServer: RegistryTokenIssuer;
  /** The realm its challenges name; default the token server's own (see StartFaultProxyOptions.tokenServer). */
  realm?: string;
  /** Working directory: config, storage and log go under it. */
  dir: string;
  /**
   * Answer uploads with relative Locations (`/v2/…`), as ACR does; distribution's default is
   * absolute. Clients that only handle one form (the Azure SDK strips a leading `/`) need this.
   * Default false.
   */
  relativeUrls?: boolean;
  /**
   * IPv4 address to listen on and to name in the certificate. Default 127.0.0.1. Go clients (helm)
   * never send loopback hosts through a proxy (golang.org/x/net/http/httpproxy), so a proxy test
   * needs the machine's own non-loopback address.
   */
  address?: string;
}

export interface RunningRegistry {
  /** `<address>:<port>`: the login server clients name. */
  host: string;
  /** `https://<address>:<port>`. */
  url: string;
  /** The token `service` (and audience) the registry expects: equal to `host`. */
  service: string;
  storageDir: string;
  logPath: string;
  stop(): Promise<void>;
}

/** Resolves with the status of `GET /v2/`, or undefined while nothing answers. */
async function probe(url: string, ca: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = https.get(`${url}/v2/`, { ca, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
  });
}

async function logTail(logPath: string): Promise<string> {
  const text = await readFile(logPath, 'utf8').catch(() => '');
  return text.trim().split('\n').slice(-3).join(' | ');
}

const STARTUP_TIMEOUT_MS = 10_000;

async function startOnce(options: StartRegistryOptions, attempt: number): Promise<RunningRegistry | 'port-taken'> {
  const [port] = await freePorts(1);
  const address = options.address ?? '127.0.0.1';
  const host = `${address}:${port}`;
  const url = `https://${host}`;
  const storageDir = path.join(options.dir, 'storage');
  const configPath = path.join(options.dir, `config-${attempt}.yml`);
  const logPath = path.join(options.dir, 'registry.log');
  await mkdir(storageDir, { recursive: true, mode: 0o700 });
  const tls = await options.ca.issue(`registry-${port}-${attempt}`, [...new Set([address, '127.0.0.1', 'localhost'])]);
  options.tokenServer.registerService(host);
  const config = {
    version: 0.1,
    log: { level: 'info', formatter: 'text', accesslog: { disabled: false } },
    storage: {
      filesystem: { rootdirectory: storageDir },
      delete: { enabled: true },
      // Background purging would race with tests that look at upload state.
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: {
      addr: host,
      // Signs upload state; the registry refuses to share it with a default.
      secret: randomBytes(24).toString('base64url'),
      tls: { certificate: tls.certPath, key: tls.keyPath },
      relativeurls: options.relativeUrls ?? false,
      // No `host`: upload Locations then follow the Host header, so they stay on the fault proxy when one is in front.
    },
    auth: {
      token: {
        realm: options.realm ?? options.tokenServer.realm,
        service: host,
        issuer: options.tokenServer.issuer,
        rootcertbundle: options.tokenServer.rootCertPath,
      },
    },
  };
  // The config holds http.secret: owner-only.
  await writeFile(configPath, stringify(config), { mode: 0o600 });

  const log = await open(logPath, 'a', 0o600);
  let child: ChildProcess;
  try {
    // REGISTRY_* variables override the config file, so the child gets only PATH.
    child = spawn(REGISTRY_BINARY, ['serve', configPath], { stdio: ['ignore', log.fd, log.fd], env: { PATH: process.env.PATH } });
  } finally {
    await log.close();
  }
  const forgetOnExit = killOnExit(child);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  // Without a listener a missing binary would crash the test process instead of failing the start.
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
    exited = true;
  });
  const stop = async () => {
    forgetOnExit();
    await stopChild(child);
  };

  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited) {
      forgetOnExit();
      if (spawnError) throw new Error(`cannot run ${REGISTRY_BINARY} (${spawnError.message}); run scripts/install-test-tools.sh`);
      const tail = await logTail(logPath);
      if (/address already in use/.test(tail)) return 'port-taken';
      throw new Error(`docker-registry exited during startup: ${tail}`);
    }
    const status = await probe(url, options.ca.caCertPem);
    if (status === 401) return { host, url, service: host, storageDir, logPath, stop };
    if (status !== undefined) {
      await stop();
      throw new Error(`docker-registry answered GET /v2/ with ${status}, expected the 401 token challenge`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  await stop();
  throw new Error(`docker-registry did not answer on ${url} within ${STARTUP_TIMEOUT_MS} ms: ${await logTail(logPath)}`);
}

export async function startRegistry(options: StartRegistryOptions): Promise<RunningRegistry> {
  // Another process may grab the probed port before the registry binds it; try a fresh one.
  for (let attempt = 1; attempt <= 3; attempt += 1) {
    const registry = await startOnce(options, attempt);
    if (registry !== 'port-taken') return registry;
  }
  throw new Error('docker-registry could not bind a free loopback port in 3 attempts');
}
