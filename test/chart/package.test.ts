// Loading and packaging in-process: the archive is a function of the chart's content only, laid
// out as helm package lays it out, and the OCI config and annotations are what helm push writes.
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { writeTar } from '../../src/archive/tar.js';
import { chartFilesFromArchive, checkDependenciesVendored, loadChartFiles, readChartFolder, type Chart } from '../../src/chart/load.js';
import { decodeMetadata, renderChartYaml, renderConfigJson } from '../../src/chart/metadata.js';
import { packageChart } from '../../src/chart/package.js';
import { chartAnnotations, prepareChart } from '../../src/chart/pushChart.js';
import { runTool } from '../env/processes.js';

const SAMPLE_CHART = join(import.meta.dirname, '..', 'fixtures', 'charts', 'web');
let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'chart-unit-'));
});
after(() => rm(work, { recursive: true, force: true }));

async function loadFolder(folder: string): Promise<Chart> {
  return loadChartFiles(await readChartFolder(folder), folder);
}

const file = (name: string, text: string) => ({ name, data: Buffer.from(text) });
const tgz = (files: { name: string; data: Buffer }[]) =>
  gzipSync(writeTar(files.map(({ name, data }) => ({ header: { name, size: data.length, mode: 0o644, uid: 0, gid: 0, mtime: 0 }, data }))));
const CHART_YAML = 'apiVersion: v2\nname: demo\nversion: 0.1.0\n';

describe('reproducible packaging', () => {
  test('a copy with other times and another creation order packs to the same bytes', async () => {
    const copy = join(work, 'reordered');
    const names = (await readdir(SAMPLE_CHART, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
    // Created in reverse order, each file with its own times.
    for (const [index, path] of names.reverse().entries()) {
      const target = join(copy, path.slice(SAMPLE_CHART.length));
      await mkdir(dirname(target), { recursive: true });
      await cp(path, target);
      await utimes(target, 1_000_000 + index, 2_000_000 + index * 7);
    }
    const [original, reordered] = await Promise.all([prepareChart({ chartPath: SAMPLE_CHART }), prepareChart({ chartPath: copy })]);
    assert.ok(original.archive.equals(reordered.archive));
  });

  test('fixed header fields: gzip without a time, entries 0644, owner 0:0, the given mtime, Helm order', async () => {
    const archive = packageChart(await loadFolder(SAMPLE_CHART), 1_700_000_000);
    assert.equal(archive.readUInt32LE(4), 0, 'gzip MTIME');
    const path = join(work, 'fixed.tgz');
    await writeFile(path, archive);
    const lines = (await runTool('tar', ['--numeric-owner', '--full-time', '-tvzf', path], { env: { ...process.env, TZ: 'UTC' } })).stdout.trim().split('\n');
    for (const line of lines) assert.match(line, /^-rw-r--r-- 0\/0 +\d+ 2023-11-14 22:13:20 web\//);
    const names = lines.map((line) => line.split(/\s+/).pop());
    assert.deepEqual(names.slice(0, 5), ['web/Chart.yaml', 'web/Chart.lock', 'web/values.yaml', 'web/values.schema.json', 'web/templates/NOTES.txt']);
    assert.equal(names.at(-1), 'web/charts/cache/templates/statefulset.yaml');
  });

  test('SOURCE_DATE_EPOCH changes entry times (and checksums) and nothing else', async () => {
    const chart = await loadFolder(SAMPLE_CHART);
    const [a, b] = [gunzipSync(packageChart(chart, 0)), gunzipSync(packageChart(chart, 1_700_000_000))];
    assert.equal(a.length, b.length);
    const differing = [...a.keys()].filter((index) => a[index] !== b[index]).map((index) => index % 512);
    assert.ok(differing.length > 0);
    assert.ok(differing.every((offset) => offset >= 136 && offset < 156), 'only the mtime and checksum fields differ');
  });
});

describe('loading', () => {
  test('a vendored .tgz subchart is expanded under charts/<name>/, as helm package does', () => {
    const subchart = tgz([file('redis/Chart.yaml', 'apiVersion: v1\nname: redis\nversion: 7.0.0\n'), file('redis/templates/a.yaml', 'kind: A\n')]);
    const chart = loadChartFiles(
      [file('Chart.yaml', `${CHART_YAML}dependencies:\n  - name: redis\n    version: 7.0.0\n    repository: https://example.com\n`), { name: 'charts/redis-7.0.0.tgz', data: subchart }, file('charts/_skipped/x', 'x')],
      'demo',
    );
    checkDependenciesVendored(chart, 'demo');
    assert.deepEqual(chart.dependencies.map((dependency) => dependency.metadata.name), ['redis']);
    assert.deepEqual(
      chartFilesFromArchive(packageChart(chart), 'demo').map((entry) => entry.name),
      ['Chart.yaml', 'charts/redis/Chart.yaml', 'charts/redis/templates/a.yaml'],
    );
  });

  // [problem, files, error]
  const failures: [string, { name: string; data: Buffer }[], RegExp][] = [
    ['a stray file in charts/', [file('Chart.yaml', CHART_YAML), file('charts/README.md', 'x')], /demo\/charts\/README\.md: is neither a chart folder nor a \.tgz/],
    ['a subchart folder with no Chart.yaml', [file('Chart.yaml', CHART_YAML), file('charts/sub/values.yaml', 'a: 1')], /demo\/charts\/sub: has no Chart\.yaml/],
    ['a duplicate dependency alias', [file('Chart.yaml', `${CHART_YAML}dependencies:\n  - name: a\n    alias: x\n  - name: b\n    alias: x\n`)], /more than one dependency with name or alias "x"/],
    ['a version that YAML reads as a number helm cannot use', [file('Chart.yaml', 'apiVersion: v2\nname: demo\nversion: 7244500.0\n')], /chart\.metadata\.version "7\.2445e\+06" is invalid/],
    ['an alias helm refuses', [file('Chart.yaml', `${CHART_YAML}dependencies:\n  - name: a\n    alias: a.b\n`)], /dependency "a" has disallowed characters in the alias/],
    ['a deprecated flag written as text', [file('Chart.yaml', `${CHART_YAML}deprecated: "yes"\n`)], /cannot unmarshal string into Metadata\.deprecated of type bool; write true or false/],
    ['values.yaml that is a list', [file('Chart.yaml', CHART_YAML), file('values.yaml', '- a\n')], /values\.yaml: cannot unmarshal array into value of type map\[string\]interface \{\}; values\.yaml must be a mapping/],
    ['a broken values.schema.json', [file('Chart.yaml', CHART_YAML), file('values.schema.json', '{')], /values\.schema\.json: Invalid JSON in values\.schema\.json/],
    ['an unknown chart type', [file('Chart.yaml', `${CHART_YAML}type: plugin\n`)], /chart\.metadata\.type must be application or library; 'plugin' is neither/],
  ];
  for (const [problem, files, error] of failures) {
    test(`refused: ${problem}`, () => assert.throws(() => loadChartFiles(files, 'demo'), error));
  }
});

describe('Chart.yaml read as Go reads it', () => {
  test('numbers and booleans in text fields become text the way sigs.k8s.io/yaml writes them', () => {
    const metadata = decodeMetadata('name: on\nversion: 010\nappVersion: 1.10\nkubeVersion: 1e3\nAPIVERSION: v2\n', 'Chart.yaml');
    assert.deepEqual(metadata, { name: 'true', version: '8', appVersion: '1.1', kubeVersion: '1000', apiVersion: 'v2' });
  });

  test('requirements.yaml decodes over Chart.yaml: lists element by element, maps key by key', () => {
    const chart = decodeMetadata('dependencies:\n  - name: a\n    condition: a.on\nannotations:\n  x: "1"\n', 'Chart.yaml');
    const merged = decodeMetadata('dependencies:\n  - name: b\n    version: 1.0.0\nannotations:\n  z: "2"\n', 'requirements.yaml', chart);
    assert.deepEqual(merged.dependencies, [{ name: 'b', condition: 'a.on', version: '1.0.0' }]);
    assert.deepEqual(merged.annotations, { x: '1', z: '2' });
  });

  test("an import-values entry 'parent: .' stays the text '.', and is written back so", () => {
    const metadata = decodeMetadata('apiVersion: v2\nname: a\nversion: 1.0.0\ndependencies:\n  - name: b\n    import-values:\n      - child: x\n        parent: .\n', 'Chart.yaml');
    assert.match(renderChartYaml(metadata), /\n {2}- child: x\n {4}parent: \.\n/);
  });
});

describe('what helm push writes', () => {
  const metadata = {
    name: 'web',
    version: '1.0.0+b.1',
    description: 'A <b> & c',
    home: 'https://example.com',
    sources: ['https://git.example.com/a', 'https://git.example.com/b'],
    maintainers: [{ name: 'Ann', email: 'ann@example.com' }, { name: 'Bob' }],
    apiVersion: 'v2',
    appVersion: '2.0',
    annotations: { zeta: 'z', alpha: 'a', 'org.opencontainers.image.title': 'ignored' },
    dependencies: [{ name: 'cache', repository: '', version: '0.1.0' }],
  };

  test("config: Go's json.Marshal of the metadata — field order, omitempty, sorted maps, HTML escapes", () => {
    assert.equal(
      renderConfigJson(metadata),
      '{"name":"web","home":"https://example.com","sources":["https://git.example.com/a","https://git.example.com/b"],"version":"1.0.0+b.1","description":"A \\u003cb\\u003e \\u0026 c",' +
        '"maintainers":[{"name":"Ann","email":"ann@example.com"},{"name":"Bob"}],"apiVersion":"v2","appVersion":"2.0","annotations":{"alpha":"a","org.opencontainers.image.title":"ignored","zeta":"z"},' +
        '"dependencies":[{"name":"cache","version":"0.1.0","repository":""}]}',
    );
  });

  test('annotations: first source, authors with emails, chart annotations that may not replace title or version, RFC 3339 created', () => {
    assert.deepEqual(chartAnnotations(metadata, 1_700_000_000), {
      alpha: 'a',
      'org.opencontainers.image.authors': 'Ann (ann@example.com), Bob',
      'org.opencontainers.image.created': '2023-11-14T22:13:20Z',
      'org.opencontainers.image.description': 'A <b> & c',
      'org.opencontainers.image.source': 'https://git.example.com/a',
      'org.opencontainers.image.title': 'web',
      'org.opencontainers.image.url': 'https://example.com',
      'org.opencontainers.image.version': '1.0.0+b.1',
      zeta: 'z',
    });
  });
});
