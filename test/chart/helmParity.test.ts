// The packaged chart against `helm package` itself, on real charts: the test charts helm's own
// module ships (apiVersion v1 and v2, requirements.yaml and Chart.lock, import-values, schemas,
// vendored folders and archives, library charts, BOMs, .helmignore) and charts from other Go
// modules, plus variations made on copies of them (symbolic links, Chart.yaml fields helm
// re-quotes and folds). For every chart helm packages, the archive's files must equal helm's byte
// for byte, and `helm show chart` and `helm template` must say the same of both archives; what helm
// refuses the task refuses, in one line. The charts come from the Go module cache
// (`go mod download`), so nothing is vendored here.
import assert from 'node:assert/strict';
import { appendFile, cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UserError } from '../../src/errors.js';
import { prepareChart } from '../../src/chart/pushChart.js';
import { testToolPath } from '../env/environment.js';
import { runTool, type ToolError } from '../env/processes.js';

const REPO = join(import.meta.dirname, '..', '..');

/** Go modules whose source trees carry the charts, at fixed versions (helm's is the one we test against). */
async function moduleVersions(): Promise<Record<string, string>> {
  const versions = await readFile(join(REPO, 'agent-image', 'versions.env'), 'utf8');
  const helm = /^HELM_VERSION=(\S+)$/m.exec(versions)![1];
  return {
    helm: `helm.sh/helm/v3@${helm}`,
    'metrics-server': 'sigs.k8s.io/metrics-server@v0.8.0',
    'external-secrets': 'github.com/external-secrets/external-secrets@v0.16.2',
  };
}

type Module = 'helm' | 'metrics-server' | 'external-secrets';

type Expectation =
  /** helm packages it; our archive must hold the same files with the same bytes. */
  | 'same'
  /** helm refuses it, and so does the task, in one line matching this. */
  | { bothRefuse: RegExp }
  /** helm packages it, the task deliberately does not (README, PrivateAcrPushChart notes). */
  | { taskRefuses: RegExp };

interface Case {
  name: string;
  module: Module;
  /** The chart folder inside the module. */
  path: string;
  /** A change made to the copy first: the variation this case is about. */
  edit?: (chart: string) => Promise<void>;
  /** Values for `helm template` where the chart would otherwise render random secrets. */
  values?: string[];
  expect: Expectation;
}

const T = 'cmd/helm/testdata/testcharts';
const LOADER = 'pkg/chart/loader/testdata';
const UTIL = 'pkg/chartutil/testdata';
const ACTION = 'pkg/action/testdata/charts';

/** Chart.yaml fields that helm re-quotes, folds or converts on the way out. */
const TRICKY_FIELDS = [
  'appVersion: 1.10',
  'description: A description long enough that the Go YAML emitter folds it over more than one line at eighty columns, as helm writes it',
  'keywords:',
  '  - yes',
  "  - '010'",
  '  - "1.5"',
  '  - ": colon"',
  '  - "#hash"',
  '  - "trailing "',
  'annotations:',
  '  artifacthub.io/changes: |',
  '    - kind: added',
  '      description: "multi-line annotation"',
  '  example.com/emoji: "ship it \u{1F680}"',
  '  example.com/number: 8080',
  '  example.com/date: 2024-01-02',
  '  example.com/empty: ""',
  '  example.com/tab: "a\\tb"',
  'kubeVersion: ">=1.20.0-0"',
  'home: "https://example.com/a: b"',
  'maintainers:',
  '  - name: Ann',
  '    email: ann@example.com',
  '  - name: "Bob #2"',
].join('\n');

const MARIADB_PASSWORDS = ['--set', 'mariadb.rootUser.password=root,mariadb.replication.password=replica,mariadb.db.password=db', '--skip-tests'];

const CASES: Case[] = [
  // apiVersion v2, with Chart.lock, .helmignore, vendored folders and .tgz subcharts
  { name: 'frobnitz (v2, Chart.lock, nested subcharts, .helmignore)', module: 'helm', path: `${LOADER}/frobnitz`, expect: 'same' },
  { name: 'frobnitz.v1 (apiVersion v1, requirements.yaml and requirements.lock)', module: 'helm', path: `${LOADER}/frobnitz.v1`, expect: 'same' },
  { name: 'frobnitz.v2.reqs (v2 with Helm 2 requirements.yaml)', module: 'helm', path: `${LOADER}/frobnitz.v2.reqs`, expect: 'same' },
  { name: 'frobnitz_with_bom (UTF-8 byte order marks)', module: 'helm', path: `${LOADER}/frobnitz_with_bom`, expect: 'same' },
  { name: 'frobnitz_backslash', module: 'helm', path: `${LOADER}/frobnitz_backslash`, expect: 'same' },
  { name: 'mariner (a .tgz subchart)', module: 'helm', path: `${LOADER}/mariner`, expect: 'same' },
  { name: 'albatross', module: 'helm', path: `${LOADER}/albatross`, expect: 'same' },
  { name: 'subpop (v1, import-values with parent: ., aliases, nested subcharts)', module: 'helm', path: `${UTIL}/subpop`, expect: 'same' },
  {
    name: 'subpop as apiVersion v2 (import-values parent: . written back into Chart.yaml)',
    module: 'helm',
    path: `${UTIL}/subpop`,
    edit: async (chart) => writeFile(join(chart, 'Chart.yaml'), (await readFile(join(chart, 'Chart.yaml'), 'utf8')).replace('apiVersion: v1', 'apiVersion: v2')),
    expect: 'same',
  },
  { name: 'dependent-chart-alias', module: 'helm', path: `${UTIL}/dependent-chart-alias`, expect: 'same' },
  { name: 'dependent-chart-helmignore', module: 'helm', path: `${UTIL}/dependent-chart-helmignore`, expect: 'same' },
  { name: 'dependent-chart-with-mixed-requirements-yaml', module: 'helm', path: `${UTIL}/dependent-chart-with-mixed-requirements-yaml`, expect: 'same' },
  { name: 'dependent-chart-with-all-in-requirements-yaml', module: 'helm', path: `${UTIL}/dependent-chart-with-all-in-requirements-yaml`, expect: 'same' },
  { name: 'three-level-dependent-chart (library subcharts, import-values)', module: 'helm', path: `${UTIL}/three-level-dependent-chart/umbrella`, expect: 'same' },
  { name: 'chartutil frobnitz', module: 'helm', path: `${UTIL}/frobnitz`, expect: 'same' },
  { name: 'joonix', module: 'helm', path: `${UTIL}/joonix`, expect: 'same' },
  { name: 'reqtest (v1, vendored .tgz)', module: 'helm', path: `${T}/reqtest`, expect: 'same' },
  { name: 'subchart (import-values, exports)', module: 'helm', path: `${T}/subchart`, expect: 'same' },
  { name: 'chart-with-schema', module: 'helm', path: `${T}/chart-with-schema`, expect: 'same' },
  { name: 'chart-with-schema-and-subchart', module: 'helm', path: `${T}/chart-with-schema-and-subchart`, expect: 'same' },
  { name: 'chart-with-subchart-update (Chart.lock)', module: 'helm', path: `${T}/chart-with-subchart-update`, expect: 'same' },
  { name: 'chart-with-lib-dep (library chart as .tgz)', module: 'helm', path: `${T}/chart-with-lib-dep`, expect: 'same' },
  { name: 'chart-with-template-lib-dep', module: 'helm', path: `${T}/chart-with-template-lib-dep`, expect: 'same' },
  { name: 'chart-with-only-crds', module: 'helm', path: `${T}/chart-with-only-crds`, expect: 'same' },
  { name: 'empty', module: 'helm', path: `${T}/empty`, expect: 'same' },
  { name: 'deprecated', module: 'helm', path: `${T}/deprecated`, expect: 'same' },
  { name: 'signtest (.helmignore)', module: 'helm', path: `${T}/signtest`, expect: 'same' },
  { name: 'chart-with-compressed-dependencies', module: 'helm', path: `${ACTION}/chart-with-compressed-dependencies`, values: MARIADB_PASSWORDS, expect: 'same' },
  { name: 'chart-with-uncompressed-dependencies', module: 'helm', path: `${ACTION}/chart-with-uncompressed-dependencies`, values: MARIADB_PASSWORDS, expect: 'same' },
  { name: 'chart-with-no-templates-dir', module: 'helm', path: `${ACTION}/chart-with-no-templates-dir`, expect: 'same' },
  { name: 'lint withsubchart', module: 'helm', path: 'pkg/lint/rules/testdata/withsubchart', expect: 'same' },
  { name: 'metrics-server (a published chart)', module: 'metrics-server', path: 'charts/metrics-server', expect: 'same' },
  {
    name: 'alpine with Chart.yaml fields helm re-quotes, folds and converts',
    module: 'helm',
    path: `${T}/alpine`,
    edit: async (chart) => {
      const original = await readFile(join(chart, 'Chart.yaml'), 'utf8');
      await writeFile(join(chart, 'Chart.yaml'), `${original.replace(/^(appVersion|description|home):.*\n/gm, '')}${TRICKY_FIELDS}\n`);
    },
    expect: 'same',
  },

  // Symbolic links, on a copy of frobnitz.
  {
    name: 'a .helmignore-d link out of the chart is skipped, as helm skips it',
    module: 'helm',
    path: `${LOADER}/frobnitz`,
    edit: async (chart) => {
      await symlink('/etc', join(chart, 'host-etc'));
      await symlink('/etc/hostname', join(chart, 'docs', 'hostname'));
      await appendFile(join(chart, '.helmignore'), '\nhost-etc/\ndocs/hostname\n');
    },
    expect: 'same',
  },
  {
    name: 'links inside the chart (a file and a folder) are followed, as helm follows them',
    module: 'helm',
    path: `${LOADER}/frobnitz`,
    edit: async (chart) => {
      await symlink('../README.md', join(chart, 'docs', 'linked-readme.md'));
      await symlink('docs', join(chart, 'linked-docs'));
    },
    expect: 'same',
  },
  {
    name: 'a link out of the chart that .helmignore does not exclude',
    module: 'helm',
    path: `${LOADER}/frobnitz`,
    edit: (chart) => symlink('/etc/hostname', join(chart, 'docs', 'hostname')),
    expect: { taskRefuses: /symbolic link docs\/hostname points outside the chart folder \(to \/etc\/hostname\); copy that content into the chart, or list the link in \.helmignore\./ },
  },
  {
    name: 'a dangling link, even an ignored one',
    module: 'helm',
    path: `${LOADER}/frobnitz`,
    edit: async (chart) => {
      await symlink('no-such-file', join(chart, 'dangling'));
      await appendFile(join(chart, '.helmignore'), '\ndangling\n');
    },
    expect: { bothRefuse: /symbolic link dangling points to nothing/ },
  },

  // What helm refuses.
  { name: 'name: . (dotname)', module: 'helm', path: `${UTIL}/dotname`, expect: { bothRefuse: /Chart\.yaml: chart\.metadata\.name "\." is not allowed; give the chart a name/ } },
  { name: 'name: .. (dotdotname)', module: 'helm', path: `${UTIL}/dotdotname`, expect: { bothRefuse: /chart\.metadata\.name "\.\." is not allowed/ } },
  { name: 'a slash in the name', module: 'helm', path: `${UTIL}/slashinname`, expect: { bothRefuse: /chart\.metadata\.name "a\/\.\.\/b" is invalid/ } },
  { name: 'invalid YAML in Chart.yaml', module: 'helm', path: `${T}/chart-bad-requirements`, expect: { bothRefuse: /Chart\.yaml: invalid YAML/ } },
  { name: 'an unknown chart type', module: 'helm', path: `${T}/chart-bad-type`, expect: { bothRefuse: /chart\.metadata\.type must be application or library; 'foobar' is neither/ } },
  { name: 'a dependency missing from charts/', module: 'helm', path: `${T}/chart-missing-deps`, expect: { bothRefuse: /lists dependencies with no chart in charts\/: reqsubchart2; run 'helm dependency build'/ } },
  { name: 'a subchart without a name', module: 'helm', path: `${T}/chart-with-bad-subcharts`, expect: { bothRefuse: /charts\/bad-subchart\/Chart\.yaml: chart\.metadata\.name is required/ } },
  { name: 'values.yaml that is not a mapping', module: 'helm', path: 'pkg/lint/rules/testdata/badvaluesfile', expect: { bothRefuse: /values\.yaml: cannot unmarshal string into value of type map\[string\]interface \{\}; values\.yaml must be a mapping/ } },
  { name: 'version: 7.2445e+06 (a YAML number)', module: 'helm', path: 'pkg/lint/rules/testdata/anotherbadchartfile', expect: { bothRefuse: /chart\.metadata\.version "7\.2445e\+06" is invalid; use a SemVer version/ } },
  { name: 'external-secrets without its vendored dependency', module: 'external-secrets', path: 'deploy/charts/external-secrets', expect: { bothRefuse: /no chart in charts\/: bitwarden-sdk-server/ } },

  // What the task deliberately refuses though helm packages it.
  {
    name: 'version v0.1.0 (not full SemVer 2)',
    module: 'helm',
    path: `${UTIL}/import-values-from-enabled-subchart/parent-chart`,
    expect: { taskRefuses: /chart\.metadata\.version "v0\.1\.0" is invalid; this task pushes only full SemVer 2 versions/ },
  },
];

let work: string;
let modules: Record<Module, string>;

const helm = (args: string[]) => runTool(testToolPath('helm'), args, { timeoutMs: 60_000 });

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'helm-parity-'));
  const versions = await moduleVersions();
  const entries = await Promise.all(
    Object.entries(versions).map(async ([key, module]) => {
      const { stdout } = await runTool('go', ['mod', 'download', '-json', module], { cwd: work, timeoutMs: 600_000 });
      return [key, (JSON.parse(stdout) as { Dir: string }).Dir] as const;
    }),
  );
  modules = Object.fromEntries(entries) as Record<Module, string>;
});

after(() => rm(work, { recursive: true, force: true }));

/** A writable copy of the case's chart, edited as the case says. */
async function chartCopy(testCase: Case): Promise<string> {
  const folder = await mkdtemp(join(work, 'case-'));
  const chart = join(folder, testCase.path.split('/').pop()!);
  await cp(join(modules[testCase.module], testCase.path), chart, { recursive: true });
  await runTool('chmod', ['-R', 'u+w', folder]);
  await testCase.edit?.(chart);
  return chart;
}

/** Every file under `folder`, relative and sorted. */
async function filesUnder(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(folder, join(entry.parentPath, entry.name)))
    .sort();
}

async function unpack(archive: string, into: string): Promise<void> {
  await mkdir(into, { recursive: true });
  await runTool('tar', ['-mxzf', archive, '-C', into]);
}

/** What helm prints for a command, or its error with the case folder blanked out. */
async function helmSays(args: string[], folder: string): Promise<string> {
  try {
    return (await helm(args)).stdout;
  } catch (error) {
    return `error: ${(error as ToolError).stderr.replaceAll(join(folder, 'helm'), '<dir>').replaceAll(join(folder, 'task'), '<dir>')}`;
  }
}

async function helmPackage(chart: string, destination: string): Promise<{ archive?: string; error?: string }> {
  try {
    await helm(['package', chart, '--destination', destination]);
    const [name] = await readdir(destination);
    return { archive: join(destination, name) };
  } catch (error) {
    return { error: (error as ToolError).stderr };
  }
}

async function taskPackage(chart: string): Promise<{ archive?: Buffer; error?: unknown }> {
  try {
    return { archive: (await prepareChart({ chartPath: chart })).archive };
  } catch (error) {
    return { error };
  }
}

function assertOneLineRefusal(error: unknown, pattern: RegExp): void {
  assert.ok(error instanceof UserError, `expected a UserError, got ${String(error)}`);
  assert.doesNotMatch(error.message, /\n/, 'one line');
  assert.match(error.message, pattern);
}

describe('charts packaged as helm package packages them', () => {
  for (const testCase of CASES) {
    test(testCase.name, async () => {
      const chart = await chartCopy(testCase);
      const folder = join(chart, '..');
      const byHelm = await helmPackage(chart, join(folder, 'helm'));
      const byTask = await taskPackage(chart);

      if (testCase.expect !== 'same') {
        if ('bothRefuse' in testCase.expect) assert.ok(byHelm.error, 'helm refuses it too');
        else assert.ok(byHelm.archive, `helm packages it: ${byHelm.error}`);
        assertOneLineRefusal(byTask.error, 'bothRefuse' in testCase.expect ? testCase.expect.bothRefuse : testCase.expect.taskRefuses);
        return;
      }

      assert.ok(byHelm.archive, `helm packages it: ${byHelm.error}`);
      assert.ok(byTask.archive, `the task packages it: ${String(byTask.error)}`);
      const ours = join(folder, 'task', basename(byHelm.archive));
      await mkdir(join(folder, 'task'));
      await writeFile(ours, byTask.archive);
      await unpack(byHelm.archive, join(folder, 'helm-files'));
      await unpack(ours, join(folder, 'task-files'));
      const helmFiles = await filesUnder(join(folder, 'helm-files'));
      assert.deepEqual(await filesUnder(join(folder, 'task-files')), helmFiles, 'the same files');
      for (const name of helmFiles) {
        const [expected, actual] = await Promise.all([readFile(join(folder, 'helm-files', name)), readFile(join(folder, 'task-files', name))]);
        assert.equal(actual.toString('utf8'), expected.toString('utf8'), `${name} has helm's bytes`);
        assert.ok(actual.equals(expected), `${name} has helm's bytes`);
      }

      assert.equal(await helmSays(['show', 'chart', ours], folder), await helmSays(['show', 'chart', byHelm.archive], folder), 'helm show chart');
      const template = (archive: string) => helmSays(['template', 'release', archive, '--kube-version', '1.30.0', ...(testCase.values ?? [])], folder);
      assert.equal(await template(ours), await template(byHelm.archive), 'helm template');
    });
  }
});
