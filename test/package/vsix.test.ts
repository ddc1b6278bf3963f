// `npm run package` for real: tfx-cli validates every task.json (GUID ids, names, handlers that
// exist) while it builds the .vsix, and the archive must hold one bundle per task with what the
// agent loads beside it — and no node_modules.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { before, test } from 'node:test';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const TASKS = readdirSync(join(ROOT, 'tasks')).filter((name) => name !== 'common');
let entries: Map<string, number>;
let vsix: string;

before(async () => {
  // The script imports the core's chart packager, which is TypeScript: tsx loads it, as npm run package does.
  await run(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'package.mjs')], { cwd: ROOT });
  const manifest = JSON.parse(readFileSync(join(ROOT, 'vss-extension.json'), 'utf8')) as { publisher: string; id: string; version: string };
  vsix = join(ROOT, 'dist', `${manifest.publisher}.${manifest.id}-${manifest.version}.vsix`);
  // Python's zipfile reads the archive's directory: no unzip package needed.
  const { stdout } = await run('python3', ['-c', 'import sys, zipfile\nfor i in zipfile.ZipFile(sys.argv[1]).infolist(): print(i.file_size, i.filename)', vsix]);
  entries = new Map(
    stdout
      .trim()
      .split('\n')
      .map((line) => [line.slice(line.indexOf(' ') + 1), Number(line.slice(0, line.indexOf(' ')))] as const),
  );
});

test('every task is in the .vsix as one bundle with its task.json, icon and task-lib messages', () => {
  assert.ok(TASKS.length >= 4);
  for (const task of TASKS) {
    for (const file of ['task.json', 'index.js', 'lib.json', 'icon.png']) assert.ok(entries.has(`tasks/${task}/${file}`), `tasks/${task}/${file} is missing`);
    const taskJson = JSON.parse(readFileSync(join(ROOT, 'tasks', task, 'task.json'), 'utf8')) as { execution: Record<string, { target: string }> };
    assert.deepEqual(Object.keys(taskJson.execution).sort(), ['Node20_1', 'Node24']);
  }
  assert.ok(entries.has('extension.vsixmanifest'));
  // helm runs the deploy task's kubeconfig credential plug-in from the bundle: a few kB, no dependencies.
  const plugin = entries.get('tasks/PrivateAksDeploy/kubeCredential.js');
  assert.ok(plugin !== undefined && plugin < 8 * 1024, `tasks/PrivateAksDeploy/kubeCredential.js is ${plugin ?? 'missing'}`);
});

test('nothing from node_modules or the sources is shipped, and the package stays small', () => {
  const names = [...entries.keys()];
  assert.deepEqual(names.filter((name) => name.includes('node_modules') || name.endsWith('.ts') || name.endsWith('.map')), []);
  assert.ok(statSync(vsix).size < 5 * 1024 * 1024, `the .vsix is ${statSync(vsix).size} bytes`);
});

test('the agent pool chart is packaged where the README pushes it from, and the real helm reads it', async () => {
  const chartYaml = readFileSync(join(ROOT, 'helm', 'azure-pipelines-agent', 'Chart.yaml'), 'utf8');
  const version = /^version: (\S+)$/m.exec(chartYaml)?.[1];
  const archive = join(ROOT, 'dist', `azure-pipelines-agent-${version}.tgz`);
  const helm = join(ROOT, '.cache', 'bin', 'helm');
  const { stdout } = await run(helm, ['show', 'chart', archive]);
  assert.match(stdout, new RegExp(`^version: ${version?.replace(/\./g, '\\.')}$`, 'm'));
  const values = join(ROOT, 'helm', 'azure-pipelines-agent', 'ci', 'scaledjob-profiles-values.yaml');
  const rendered = await run(helm, ['template', 'agents', archive, '--kube-version', '1.34.0', '--values', values]);
  assert.match(rendered.stdout, /^kind: ScaledJob$/m);
});

test('the agent image build context is packaged with its scripts executable', async () => {
  const appVersion = /^appVersion: "([^"]+)"$/m.exec(readFileSync(join(ROOT, 'helm', 'azure-pipelines-agent', 'Chart.yaml'), 'utf8'))?.[1];
  const { stdout } = await run('tar', ['--list', '--verbose', '--gzip', `--file=${join(ROOT, 'dist', `azure-pipelines-agent-image-${appVersion}.tar.gz`)}`]);
  const modes = new Map(stdout.trim().split('\n').map((line) => [line.split(/\s+/).at(-1), line.slice(0, 10)] as const));
  for (const file of ['Dockerfile', 'README.md']) assert.equal(modes.get(`azure-pipelines-agent-image/${file}`), '-rw-r--r--', file);
  for (const script of ['start.sh', 'install.sh']) assert.equal(modes.get(`azure-pipelines-agent-image/${script}`), '-rwxr-xr-x', script);
});
