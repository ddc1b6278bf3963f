// `npm run package`: everything a release publishes, under dist/:
// - the extension: dist/extension packaged into dist/<publisher>.<id>-<version>.vsix by tfx-cli (offline);
// - the agent pool chart: dist/<chart>-<version>.tgz, laid out as `helm package` lays it out but
//   reproducible (the core's chart packager, the one PrivateAcrPushChart@1 uses), ready for
//   `helm push … oci://<registry>/helm`;
// - the agent image's build context: dist/azure-pipelines-agent-image-<agent version>.tar.gz, a
//   reproducible tarball of agent-image/ (modes kept: start.sh must stay executable) for
//   `docker build - < …` or unpacking on the build host.
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { prepareChart } from '../src/chart/pushChart.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
await mkdir(dist, { recursive: true });

const tfx = join(root, 'node_modules', '.bin', 'tfx');
execFileSync(
  tfx,
  ['extension', 'create', '--root', join(root, 'dist', 'extension'), '--manifest-globs', 'vss-extension.json', '--output-path', dist, '--no-prompt', '--json'],
  { stdio: ['ignore', 'inherit', 'inherit'] },
);

const chart = await prepareChart({ chartPath: join(root, 'helm', 'azure-pipelines-agent') });
await writeFile(join(dist, chart.archiveName), chart.archive);
console.log(`wrote dist/${chart.archiveName} (${chart.metadata.name} ${chart.metadata.version})`);

// GNU tar with every varying field fixed (order, owners, times); gzip by zlib, whose header has no time.
const imageContext = `azure-pipelines-agent-image-${chart.metadata.appVersion}.tar.gz`;
const tar = execFileSync('tar', [
  '--create', '--file=-', '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0',
  '--mode=go-w', '--transform=s,^agent-image,azure-pipelines-agent-image,', '--directory', root, 'agent-image',
], { maxBuffer: 64 * 1024 * 1024 });
await writeFile(join(dist, imageContext), gzipSync(tar, { level: 9 }));
console.log(`wrote dist/${imageContext} (the agent image's build context)`);
