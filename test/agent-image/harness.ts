// Runs agent-image/start.sh against the fake agent package (test/agent-image/fake-agent) in a
// throw-away sandbox, and reads back what the fake agent and the fake Azure DevOps side recorded.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

export const repoRoot = path.resolve(import.meta.dirname, '../..');
export const startScript = path.join(repoRoot, 'agent-image/start.sh');
export const fakeAgentSource = path.join(import.meta.dirname, 'fake-agent');

/** One line of the fake agent's events.log: `<epoch ms> <name> <details>`. */
export interface AgentEvent {
  at: number;
  name: string;
  details: string;
}

/** One config.sh run as the fake recorded it (secrets only as SHA-256). */
export interface ConfigRecord {
  command: 'configure' | 'remove';
  result: string;
  auth: string;
  url: string;
  pool: string;
  agent: string;
  work: string;
  replace: boolean;
  clientId: string;
  tenantId: string;
  proxyUrl: string;
  sslCaCert: string;
  tokenSha256: string;
  clientSecretSha256: string;
  argv: string[];
  secretsOnCommandLine: string[];
  envInputs: string[];
  /** What the agent would report: its environment minus VSO_AGENT_IGNORE, plus Agent.*. */
  capabilities: Record<string, string>;
}

export interface ScriptExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** A value no test could produce by accident, to search for in environments and logs. */
export function secretValue(kind: string): string {
  return `${kind}-${randomBytes(16).toString('hex')}`;
}

export class Sandbox {
  readonly agentDir: string;
  readonly logDir: string;
  readonly azdoDir: string;
  private readonly children = new Set<ChildProcess>();

  private constructor(readonly root: string) {
    this.agentDir = path.join(root, 'agent');
    this.logDir = path.join(root, 'log');
    this.azdoDir = path.join(root, 'azdo');
  }

  /** A fresh copy of the fake agent (it keeps its registration in its own folder, as the real one does). */
  static async create(): Promise<Sandbox> {
    const sandbox = new Sandbox(await mkdtemp(path.join(tmpdir(), 'agent-image-')));
    await cp(fakeAgentSource, sandbox.agentDir, { recursive: true });
    await mkdir(path.join(sandbox.azdoDir, 'queue'), { recursive: true });
    return sandbox;
  }

  /** Writes a secret file with mode 0600, as a mounted Kubernetes secret would be. */
  async secretFile(name: string, content: string): Promise<string> {
    const file = path.join(this.root, name);
    await writeFile(file, `${content}\n`, { mode: 0o600 });
    return file;
  }

  /**
   * The environment start.sh gets: nothing inherited but PATH, so a test states every input.
   * The fake config.sh refuses root as the real one does; tests running as root allow it.
   */
  env(vars: Record<string, string | undefined>): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: this.root,
      FAKE_AGENT_LOG_DIR: this.logDir,
      FAKE_AZDO_DIR: this.azdoDir,
      AZP_AGENT_DIR: this.agentDir,
    };
    if (process.getuid?.() === 0) env.AGENT_ALLOW_RUNASROOT = '1';
    for (const [name, value] of Object.entries(vars)) {
      if (value === undefined) delete env[name];
      else env[name] = value;
    }
    return env;
  }

  /** Starts start.sh; `exited` settles when it ends, with everything it printed. */
  start(vars: Record<string, string | undefined>): { child: ChildProcess; exited: Promise<ScriptExit> } {
    const child = spawn(startScript, [], { env: this.env(vars), stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<ScriptExit>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => {
        this.children.delete(child);
        resolve({ code, signal, stdout, stderr });
      });
    });
    return { child, exited };
  }

  /** Puts a job of the given length in the pool's queue; the next free agent takes it. */
  async queueJob(id: string, seconds: number): Promise<void> {
    const file = path.join(this.azdoDir, 'queue', `${id}.job`);
    // Written aside and renamed, so the listener never reads a half-written job.
    await writeFile(`${file}.new`, `${seconds}\n`);
    await rename(`${file}.new`, file);
  }

  async events(): Promise<AgentEvent[]> {
    const text = await readFile(path.join(this.logDir, 'events.log'), 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => {
        const [at, name, ...details] = line.split(' ');
        return { at: Number(at), name, details: details.join(' ') };
      });
  }

  async configRecords(): Promise<ConfigRecord[]> {
    const text = await readFile(path.join(this.logDir, 'config.jsonl'), 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as ConfigRecord);
  }

  /** Agent names registered on the fake Azure DevOps side. */
  async registeredAgents(): Promise<string[]> {
    return readdir(path.join(this.azdoDir, 'agents')).catch(() => []);
  }

  /** Waits for the first event with this name (and details, when given). */
  async waitForEvent(name: string, details?: string, timeoutMs = 15_000): Promise<AgentEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = (await this.events()).find((e) => e.name === name && (details === undefined || e.details === details));
      if (found) return found;
      if (Date.now() > deadline) {
        throw new Error(`no '${name}' event within ${timeoutMs} ms; events so far:\n${JSON.stringify(await this.events(), null, 1)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** PID of the fake listener, from its start event. */
  async listenerPid(): Promise<number> {
    const started = await this.waitForEvent('listener-started');
    return Number(started.details.split(' ')[0]);
  }

  /** Every file the fake agent and its jobs wrote, concatenated: what "the agent's logs" hold. */
  async allLogText(): Promise<string> {
    const texts: string[] = [];
    for (const dir of [this.logDir, this.agentDir]) {
      for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
        if (entry.isFile()) texts.push(await readFile(path.join(entry.parentPath, entry.name), 'utf8'));
      }
    }
    return texts.join('\n');
  }

  /** Kills whatever is still running (start.sh and the listener's own session) and removes the sandbox. */
  async dispose(): Promise<void> {
    for (const child of this.children) child.kill('SIGKILL');
    for (const event of await this.events()) {
      if (event.name !== 'listener-started') continue;
      try {
        process.kill(-Number(event.details.split(' ')[0]), 'SIGKILL');
      } catch {
        // Already gone: the usual case.
      }
    }
    await rm(this.root, { recursive: true, force: true });
  }
}

/** Reads /proc/<pid>/environ as NAME=value strings. */
export async function processEnvironment(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0').filter((entry) => entry !== '');
}

export function eventNames(events: AgentEvent[]): string[] {
  return events.map((e) => (e.details ? `${e.name} ${e.details}` : e.name)).map((line) => line.replace(/^listener-started \d+/, 'listener-started'));
}

/** The listener's environment holds none of the secrets, pins the agent version and hides credential names from capabilities. */
export async function assertListenerEnvironment(sandbox: Sandbox, ...secrets: string[]): Promise<void> {
  const pid = await sandbox.listenerPid();
  const environment = await processEnvironment(pid);
  for (const secret of secrets) assert.ok(!environment.join('\n').includes(secret), 'a secret is in the listener environment');
  assert.ok(!environment.some((entry) => entry.startsWith('VSTS_AGENT_INPUT_')));
  assert.ok(environment.includes('agent.disableupdate=true'));
  const ignored = environment.find((entry) => entry.startsWith('VSO_AGENT_IGNORE='))?.split('=')[1].split(',') ?? [];
  for (const name of ['AZP_TOKEN_FILE', 'AZP_CLIENT_SECRET_FILE', 'AZURE_FEDERATED_TOKEN_FILE']) assert.ok(ignored.includes(name), name);
}
