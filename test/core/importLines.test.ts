// The import task's `images` and `platforms` as users write them: Docker Hub's short names, target
// overrides, digests, comments; and what is refused, naming the input.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InputError } from '../../src/errors.js';
import { parseImportLines } from '../../src/image/importImages.js';
import { parsePlatforms } from '../../src/oci/copy.js';

const digest = `sha256:${'b'.repeat(64)}`;

describe('images lines', () => {
  const cases: [string, object][] = [
    ['ghcr.io/aquasecurity/trivy-db:2', { text: 'ghcr.io/aquasecurity/trivy-db:2', host: 'ghcr.io', repository: 'aquasecurity/trivy-db', reference: '2', target: { repository: 'aquasecurity/trivy-db', tag: '2' } }],
    ['node:22-alpine base/node:22', { text: 'node:22-alpine', host: 'registry-1.docker.io', repository: 'library/node', reference: '22-alpine', target: { repository: 'base/node', tag: '22' } }],
    ['docker.io/bitnami/redis:7.4 base/redis', { text: 'docker.io/bitnami/redis:7.4', host: 'registry-1.docker.io', repository: 'bitnami/redis', reference: '7.4', target: { repository: 'base/redis', tag: '7.4' } }],
    [`mcr.microsoft.com/dotnet/runtime@${digest}`, { text: `mcr.microsoft.com/dotnet/runtime@${digest}`, host: 'mcr.microsoft.com', repository: 'dotnet/runtime', reference: digest, target: { repository: 'dotnet/runtime', tag: undefined } }],
    [`quay.io/prometheus/node-exporter:v1.8.2@${digest}  # pinned`, { text: `quay.io/prometheus/node-exporter:v1.8.2@${digest}`, host: 'quay.io', repository: 'prometheus/node-exporter', reference: digest, target: { repository: 'prometheus/node-exporter', tag: 'v1.8.2' } }],
    ['127.0.0.1:5000/app:1 mirror/app:stable', { text: '127.0.0.1:5000/app:1', host: '127.0.0.1:5000', repository: 'app', reference: '1', target: { repository: 'mirror/app', tag: 'stable' } }],
  ];
  for (const [line, expected] of cases) test(`reads '${line.slice(0, 48)}'`, () => assert.deepEqual(parseImportLines(line), [expected]));
  test('skips comments and blank lines, keeps order', () => {
    assert.deepEqual(parseImportLines('# bases\n\nalpine:3.20\n  ghcr.io/aquasecurity/trivy-java-db:1\n').map((line) => line.text), ['alpine:3.20', 'ghcr.io/aquasecurity/trivy-java-db:1']);
  });
  const refused: [string, RegExp][] = [
    ['alpine', /'alpine' names no tag or digest/],
    ['alpine:3.20 base/alpine:3.20 extra', /line 1 has 3 words/],
    ['alpine:3.20 Base/Alpine', /'Base\/Alpine' is not a valid repository name/],
    ['alpine:3.20 base/alpine:-x', /'-x' is not a valid tag/],
    ['', /lists no image/],
  ];
  for (const [line, message] of refused) {
    test(`refuses '${line}'`, () => assert.throws(() => parseImportLines(line), (error: unknown) => error instanceof InputError && error.input === 'images' && message.test(error.message)));
  }
});

describe('platforms', () => {
  test('reads a list', () => {
    assert.deepEqual(parsePlatforms('linux/amd64, linux/arm64/v8\nwindows/amd64', 'platforms'), [
      { os: 'linux', architecture: 'amd64', variant: undefined },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
      { os: 'windows', architecture: 'amd64', variant: undefined },
    ]);
  });
  test('empty means all', () => assert.deepEqual(parsePlatforms('', 'platforms'), []));
  for (const value of ['linux', 'linux/amd64/v8/x', 'Linux/AMD64', 'linux//amd64']) {
    test(`refuses '${value}'`, () => assert.throws(() => parsePlatforms(value, 'platforms'), /Input 'platforms': .* is not a platform/));
  }
});
