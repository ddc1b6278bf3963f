// Bundles every task under tasks/<Name>/ into one file with esbuild and lays out the extension
// under dist/extension: task.json, icon and task-lib's lib.json beside each bundle, no node_modules.
import { build } from 'esbuild';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'extension');
const require = createRequire(import.meta.url);
const taskLibJson = join(dirname(require.resolve('azure-pipelines-task-lib/package.json')), 'lib.json');

const tasks = readdirSync(join(root, 'tasks'), { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && existsSync(join(root, 'tasks', entry.name, 'task.json')))
  .map((entry) => entry.name);

// Files are replaced in place rather than the folder wiped first, so a test running the bundles
// while another build runs never finds them missing; folders of tasks that are gone are removed.
for (const stale of existsSync(join(out, 'tasks')) ? readdirSync(join(out, 'tasks')) : []) {
  if (!tasks.includes(stale)) rmSync(join(out, 'tasks', stale), { recursive: true, force: true });
}
// A task's entry is index.ts; a `<name>.main.ts` beside it is a program the task starts (helm's
// kubeconfig credential plug-in), bundled on its own as `<name>.js`.
const entries = (task) => [
  { in: join(root, 'tasks', task, 'index.ts'), out: 'index' },
  ...readdirSync(join(root, 'tasks', task))
    .filter((name) => name.endsWith('.main.ts'))
    .map((name) => ({ in: join(root, 'tasks', task, name), out: name.slice(0, -'.main.ts'.length) })),
];
await Promise.all(
  tasks.map(async (task) => {
    const target = join(out, 'tasks', task);
    mkdirSync(target, { recursive: true });
    await build({
      entryPoints: entries(task),
      outdir: target,
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      minify: true,
      legalComments: 'linked',
      logLevel: 'warning',
    });
    for (const file of ['task.json', 'icon.png']) cpSync(join(root, 'tasks', task, file), join(target, file));
    // task-lib reads its messages from lib.json next to the running script.
    cpSync(taskLibJson, join(target, 'lib.json'));
  }),
);
// The repository is an ES module package; the bundles are CommonJS, as the agent runs them.
// This marker is outside the manifest's `files`, so it never reaches the .vsix.
writeFileSync(join(out, 'package.json'), '{ "type": "commonjs" }\n');
for (const file of ['vss-extension.json', 'overview.md', 'LICENSE']) cpSync(join(root, file), join(out, file));
cpSync(join(root, 'images'), join(out, 'images'), { recursive: true });
console.log(`Built ${tasks.length} task(s) into ${out}: ${tasks.join(', ')}`);
