// Loading and packaging in-process: the archive is a function of the chart's content only, laid
// out as helm package lays it out, and the OCI config and annotations are what helm push writes.
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { readTarGz, writeTarGz } from '../../src/chart/archive.js';
import { checkDependenciesVendored, loadChartFiles, readChartFolder, type Chart } from '../../src/chart/load.js';
import { renderConfigJson } from '../../src/chart/metadata.js';
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
  return loadChartFiles(await readChartFolder(folder), folder, true);
}

const file = (name: string, text: string) => ({ name, data: Buffer.from(text) });
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

  test('names past ustar limits survive: a prefix split, then a pax path record; GNU tar agrees', async () => {
    const split = `web/${'a'.repeat(90)}/${'b'.repeat(90)}.yaml`;
    const pax = `web/${'c'.repeat(120)}${'d'.repeat(120)}.yaml`;
    const archive = writeTarGz([file(split, 'one'), file(pax, 'two')], 0);
    assert.deepEqual(
      readTarGz(archive, 'test').map((entry) => [entry.name, entry.data.toString()]),
      [
        [split, 'one'],
        [pax, 'two'],
      ],
    );
    const path = join(work, 'long.tgz');
    await writeFile(path, archive);
    assert.deepEqual((await runTool('tar', ['-tzf', path])).stdout.trim().split('\n'), [split, pax]);
  });
});

describe('loading', () => {
  test('a vendored .tgz subchart is expanded under charts/<name>/, as helm package does', () => {
    const subchart = writeTarGz([file('redis/Chart.yaml', 'apiVersion: v1\nname: redis\nversion: 7.0.0\n'), file('redis/templates/a.yaml', 'kind: A\n')], 0);
    const chart = loadChartFiles(
      [file('Chart.yaml', `${CHART_YAML}dependencies:\n  - name: redis\n    version: 7.0.0\n    repository: https://example.com\n`), { name: 'charts/redis-7.0.0.tgz', data: subchart }, file('charts/_skipped/x', 'x')],
      'demo',
      true,
    );
    checkDependenciesVendored(chart, 'demo');
    assert.deepEqual(chart.dependencies.map((dependency) => dependency.metadata.name), ['redis']);
    assert.deepEqual(
      readTarGz(packageChart(chart), 'demo').map((entry) => entry.name),
      ['demo/Chart.yaml', 'demo/charts/redis/Chart.yaml', 'demo/charts/redis/templates/a.yaml'],
    );
  });

  // [problem, files, error]
  const failures: [string, { name: string; data: Buffer }[], RegExp][] = [
    ['a stray file in charts/', [file('Chart.yaml', CHART_YAML), file('charts/README.md', 'x')], /demo\/charts\/README\.md: is neither a chart folder nor a \.tgz/],
    ['a subchart folder with no Chart.yaml', [file('Chart.yaml', CHART_YAML), file('charts/sub/values.yaml', 'a: 1')], /demo\/charts\/sub: has no Chart\.yaml/],
    ['a duplicate dependency alias', [file('Chart.yaml', `${CHART_YAML}dependencies:\n  - name: a\n    alias: x\n  - name: b\n    alias: x\n`)], /more than one dependency is named or aliased 'x'/],
    ['a version that YAML reads as a number', [file('Chart.yaml', 'apiVersion: v2\nname: demo\nversion: 1.0\n')], /'version' must be a string; quote it/],
    ['values.yaml that is a list', [file('Chart.yaml', CHART_YAML), file('values.yaml', '- a\n')], /values\.yaml: must be a YAML mapping/],
    ['a broken values.schema.json', [file('Chart.yaml', CHART_YAML), file('values.schema.json', '{')], /values\.schema\.json: is not valid JSON/],
    ['an unknown chart type', [file('Chart.yaml', `${CHART_YAML}type: plugin\n`)], /type 'plugin' must be application or library/],
  ];
  for (const [problem, files, error] of failures) {
    test(`refused: ${problem}`, () => assert.throws(() => loadChartFiles(files, 'demo', true), error));
  }
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
