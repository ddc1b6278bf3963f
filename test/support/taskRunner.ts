// Runs a bundled task the way the Azure Pipelines agent does: a node child process whose inputs,
// service connections and variables arrive as environment variables, task.json defaults filled in
// and `$(Variable)` macros expanded, and whose `##vso[…]` logging commands are parsed afterwards.
// Like the agent, it masks connection secrets and every value registered with `task.setsecret`
// from that line on, so a token that shows up in `maskedOutput` was printed before it was registered.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
export const AGENT_VERSION = '4.266.2';

export interface ServiceConnection {
  scheme: string;
  url?: string;
  /** Authorization parameters; keys as the agent stores them (case kept, upper-cased in the env). */
  parameters: Record<string, string>;
  data?: Record<string, string>;
}

export interface TaskRunOptions {
  inputs: Record<string, string>;
  /** Service connections by id, referenced from inputs. */
  connections?: Record<string, ServiceConnection>;
  /** Pipeline variables such as `Build.BuildId` or `System.OidcRequestUri`. */
  variables?: Record<string, string>;
  /** Extra process environment (NODE_EXTRA_CA_CERTS, AZURE_* of an agent pod …). */
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Runs beside the task once it started, e.g. to cancel it as the agent does (`task.kill('SIGINT')`). */
  whileRunning?: (task: RunningTask) => Promise<void>;
}

export interface RunningTask {
  pid: number;
  /** The agent's temp folder of this run. */
  tempDir: string;
  /** stdout and stderr so far, unmasked. */
  output(): string;
  kill(signal: NodeJS.Signals): void;
}

export interface TaskRun {
  exitCode: number | null;
  result?: string;
  /** The message of `task.complete`. */
  message?: string;
  errors: string[];
  warnings: string[];
  outputs: Record<string, string>;
  summaries: string[];
  /** `results.publish` commands (the Tests tab) with the content of each result file. */
  testResults: { type: string; runTitle?: string; files: { path: string; content: string }[] }[];
  /** stdout + stderr after the agent's masking. */
  maskedOutput: string;
  /** Every value the task registered with setSecret. */
  registeredSecrets: string[];
  /** What was left in the agent's temp folder when the process ended (paths relative to it), run summaries included. */
  tempFilesLeft: string[];
}

interface TaskJson {
  inputs: { name: string; defaultValue?: string }[];
}

// Authorization parameters and variables (Agent.ProxyPassword, System.AccessToken …) the agent
// treats as secret and masks before the task starts.
const SECRET_NAME = /key|secret|password|token|certificate/i;

export interface PreparedTask {
  /** The bundle to run with node. */
  script: string;
  /** The process environment the agent would give it. */
  env: Record<string, string>;
  /** The agent's temp folder for this run. */
  tempDir: string;
  /** Connection secrets the agent masks from the start. */
  masked: Set<string>;
}

/** Everything the agent sets up before it starts a task's process. */
export function prepareTask(task: string, options: TaskRunOptions): PreparedTask {
  const taskDir = join(ROOT, 'dist', 'extension', 'tasks', task);
  const taskJson = JSON.parse(readFileSync(join(taskDir, 'task.json'), 'utf8')) as TaskJson;
  const tempDir = mkdtempSync(join(tmpdir(), `agent-temp-${task}-`));
  const variables: Record<string, string> = {
    'Agent.TempDirectory': tempDir,
    'Agent.Version': AGENT_VERSION,
    'Build.BuildId': '4711',
    'System.DefaultWorkingDirectory': ROOT,
    ...options.variables,
  };
  const expand = (value: string) => value.replace(/\$\(([^)]+)\)/g, (macro, name: string) => variables[name] ?? macro);
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tempDir, ...options.env };
  for (const [name, value] of Object.entries(variables)) env[name.replace(/\./g, '_').toUpperCase()] = value;
  for (const input of taskJson.inputs) {
    const value = options.inputs[input.name] ?? input.defaultValue;
    if (value !== undefined) env[`INPUT_${input.name.toUpperCase()}`] = expand(value);
  }
  const unknown = Object.keys(options.inputs).filter((name) => !taskJson.inputs.some((input) => input.name === name));
  if (unknown.length) throw new Error(`${task} has no inputs named ${unknown.join(', ')}`);

  const masked = new Set(Object.entries(variables).filter(([name]) => SECRET_NAME.test(name)).map(([, value]) => value));
  for (const [id, connection] of Object.entries(options.connections ?? {})) {
    if (connection.url) env[`ENDPOINT_URL_${id}`] = connection.url;
    env[`ENDPOINT_AUTH_${id}`] = JSON.stringify({ scheme: connection.scheme, parameters: connection.parameters });
    env[`ENDPOINT_AUTH_SCHEME_${id}`] = connection.scheme;
    for (const [key, value] of Object.entries(connection.parameters)) {
      env[`ENDPOINT_AUTH_PARAMETER_${id}_${key.toUpperCase()}`] = value;
      if (SECRET_NAME.test(key)) masked.add(value);
    }
    for (const [key, value] of Object.entries(connection.data ?? {})) env[`ENDPOINT_DATA_${id}_${key.toUpperCase()}`] = value;
  }
  return { script: join(taskDir, 'index.js'), env, tempDir, masked };
}

/** Undoes task-lib's escaping of logging-command property values. */
function unescapeProperty(value: string): string {
  return value.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%5D/g, ']').replace(/%3B/g, ';').replace(/%AZP25/g, '%');
}

export async function runTask(task: string, options: TaskRunOptions): Promise<TaskRun> {
  const { script, env, tempDir, masked } = prepareTask(task, options);
  let output = '';
  let beside: Promise<Error | undefined> = Promise.resolve(undefined);
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(process.execPath, [script], { env, cwd: tempDir, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 }, (error, out, err) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout: out, stderr: err }),
    );
    for (const stream of [child.stdout, child.stderr]) stream?.on('data', (chunk: Buffer | string) => (output += String(chunk)));
    if (options.whileRunning && child.pid !== undefined) {
      // A failure beside the task stops it, and is thrown once it has ended.
      beside = options.whileRunning({ pid: child.pid, tempDir, output: () => output, kill: (signal) => child.kill(signal) }).then(
        () => undefined,
        (error: unknown) => {
          child.kill('SIGKILL');
          return error instanceof Error ? error : new Error(String(error));
        },
      );
    }
  });
  const besideError = await beside;
  if (besideError) {
    rmSync(tempDir, { recursive: true, force: true });
    throw besideError;
  }

  const run: TaskRun = {
    exitCode: code, errors: [], warnings: [], outputs: {}, summaries: [], testResults: [], maskedOutput: '', registeredSecrets: [],
    tempFilesLeft: readdirSync(tempDir, { recursive: true, encoding: 'utf8' }).sort(),
  };
  const maskedLines: string[] = [];
  for (const line of `${stdout}\n${stderr}`.split('\n')) {
    const mask = (text: string) => [...masked].filter(Boolean).reduce((acc, secret) => acc.split(secret).join('***'), text);
    const command = /^##vso\[([\w.]+)([^\]]*)\](.*)$/.exec(line);
    if (command) {
      const [, name, rawProperties, value] = command as unknown as [string, string, string, string];
      const properties = Object.fromEntries(
        rawProperties
          .trim()
          .split(';')
          .filter(Boolean)
          .map((pair) => pair.split('=') as [string, string]),
      );
      if (name === 'task.setsecret') {
        masked.add(value);
        run.registeredSecrets.push(value);
        maskedLines.push('##vso[task.setsecret]***');
        continue;
      }
      if (name === 'task.complete') {
        run.result = properties.result;
        run.message = value;
      } else if (name === 'task.issue' && properties.type === 'error') run.errors.push(value);
      else if (name === 'task.issue' && properties.type === 'warning') run.warnings.push(value);
      else if (name === 'task.setvariable' && properties.isOutput === 'true') run.outputs[properties.variable] = value;
      else if (name === 'task.uploadsummary') run.summaries.push(readFileSync(value, 'utf8'));
      else if (name === 'results.publish') {
        // The agent reads the files once the step ends, so they must outlive the task's process.
        const files = (properties.resultFiles ?? '').split(',').filter(Boolean).map((path) => ({ path, content: readFileSync(path, 'utf8') }));
        run.testResults.push({ type: properties.type, runTitle: properties.runTitle && unescapeProperty(properties.runTitle), files });
      }
    }
    maskedLines.push(mask(line));
  }
  run.maskedOutput = maskedLines.join('\n');
  rmSync(tempDir, { recursive: true, force: true });
  return run;
}
