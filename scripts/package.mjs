// Packages dist/extension into dist/<publisher>.<id>-<version>.vsix with tfx-cli (offline).
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tfx = join(root, 'node_modules', '.bin', 'tfx');
execFileSync(
  tfx,
  ['extension', 'create', '--root', join(root, 'dist', 'extension'), '--manifest-globs', 'vss-extension.json', '--output-path', join(root, 'dist'), '--no-prompt', '--json'],
  { stdio: ['ignore', 'inherit', 'inherit'] },
);
