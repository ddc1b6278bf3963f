// A real forward proxy for the tests of the agent's proxy settings: tinyproxy (Debian) on loopback,
// requiring Basic credentials, logging every CONNECT so a test can see which hosts went through it.
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePorts } from './http.js';
import { killOnExit, stopChild } from './processes.js';

export interface ForwardProxy {
  /** `http://127.0.0.1:<port>`, without credentials, as the agent's proxy URL. */
  url: string;
  username: string;
  password: string;
  /** `host:port` of every CONNECT the proxy received so far. */
  tunnels(): Promise<string[]>;
  stop(): Promise<void>;
}

export async function startForwardProxy(options: { dir: string; username: string; password: string }): Promise<ForwardProxy> {
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  const [port] = await freePorts(1);
  const logPath = path.join(options.dir, 'tinyproxy.log');
  const configPath = path.join(options.dir, 'tinyproxy.conf');
  // No ConnectPort lines: tinyproxy then tunnels to any port, as the registries here use ephemeral ones.
  const config = [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Timeout 60',
    `LogFile "${logPath}"`,
    'LogLevel Connect',
    'MaxClients 64',
    'Allow 127.0.0.1',
    'DisableViaHeader Yes',
    `BasicAuth ${options.username} ${options.password}`,
  ].join('\n');
  await writeFile(configPath, `${config}\n`, { mode: 0o600 });
  const child = spawn('tinyproxy', ['-d', '-c', configPath], { stdio: 'ignore' });
  const forget = killOnExit(child);
  for (let tries = 0; ; tries++) {
    const listening = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => resolve(true)).once('error', () => resolve(false));
      socket.unref();
      setImmediate(() => socket.end());
    });
    if (listening) break;
    if (tries > 100 || child.exitCode !== null) throw new Error(`tinyproxy did not start on port ${port}`);
    await sleep(50);
  }
  return {
    url: `http://127.0.0.1:${port}`,
    username: options.username,
    password: options.password,
    tunnels: async () => [...(await readFile(logPath, 'utf8').catch(() => '')).matchAll(/Request \(file descriptor \d+\): CONNECT (\S+) HTTP/g)].map((match) => match[1]),
    stop: async () => {
      forget();
      await stopChild(child);
    },
  };
}
