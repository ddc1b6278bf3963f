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
  await run(process.execPath, [join(ROOT, 'scripts', 'package.mjs')], { cwd: ROOT });
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
