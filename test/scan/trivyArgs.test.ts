// How the scan task drives Trivy: the argument arrays (never a secret in them), the environment it
// gets (credentials only through a 0600 docker config; the agent's proxy; nothing inherited that
// would change the scan).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { trivyEnvironment, trivyImageArgs, type TrivyImageScan } from '../../src/scan/trivy.js';

const base: TrivyImageScan = {
  input: { kind: 'registry', reference: `contoso.azurecr.io/team/app@sha256:${'a'.repeat(64)}` },
  cacheDir: '/tmp/scan/cache',
  databaseRepository: 'contoso.azurecr.io/aquasecurity/trivy-db:2',
  javaDatabaseRepository: 'contoso.azurecr.io/aquasecurity/trivy-java-db:1',
  outputPath: '/tmp/scan/report.json',
  ignoreUnfixed: false,
  timeoutSeconds: 600,
};

const common = [
  'image', '--scanners', 'vuln', '--format', 'json', '--output', '/tmp/scan/report.json', '--cache-dir', '/tmp/scan/cache',
  '--db-repository', 'contoso.azurecr.io/aquasecurity/trivy-db:2', '--java-db-repository', 'contoso.azurecr.io/aquasecurity/trivy-java-db:1',
  '--timeout', '600s', '--skip-version-check', '--disable-telemetry', '--no-progress',
];

describe('trivy image arguments', () => {
  const cases: [string, Partial<TrivyImageScan>, string[]][] = [
    ['an image in the registry, by digest, from the registry only', {}, [...common, '--image-src', 'remote', `contoso.azurecr.io/team/app@sha256:${'a'.repeat(64)}`]],
    ['an image layout on disk', { input: { kind: 'file', path: '/work/out/image' } }, [...common, '--input', '/work/out/image']],
    [
      'the gate options',
      { ignoreUnfixed: true, ignoreFile: '/src/.trivyignore', caFile: '/tmp/scan/ca.pem' },
      [...common, '--ignore-unfixed', '--ignorefile', '/src/.trivyignore', '--cacert', '/tmp/scan/ca.pem', '--image-src', 'remote', `contoso.azurecr.io/team/app@sha256:${'a'.repeat(64)}`],
    ],
  ];
  for (const [name, options, expected] of cases) test(name, () => assert.deepEqual(trivyImageArgs({ ...base, ...options }), expected));
});

describe('trivy environment', () => {
  const inherited = {
    PATH: '/usr/bin',
    HOME: '/home/agent',
    TRIVY_USERNAME: 'someone',
    TRIVY_PASSWORD: 'inherited-secret',
    TRIVY_DB_REPOSITORY: 'ghcr.io/aquasecurity/trivy-db:2',
    DOCKER_CONFIG: '/home/agent/.docker',
    REGISTRY_AUTH_FILE: '/run/containers/auth.json',
    HTTPS_PROXY: 'http://old-proxy:3128',
  };

  test('drops Trivy settings and other credential stores, keeps the rest, points at the private config', () => {
    const env = trivyEnvironment(inherited, { dockerConfig: '/tmp/scan', tempDir: '/tmp/scan/tmp', hosts: ['contoso.azurecr.io'] });
    assert.deepEqual(env, { PATH: '/usr/bin', HOME: '/home/agent', HTTPS_PROXY: 'http://old-proxy:3128', DOCKER_CONFIG: '/tmp/scan', TMPDIR: '/tmp/scan/tmp' });
  });

  test("the agent's proxy replaces inherited proxy variables, with its credentials", () => {
    const env = trivyEnvironment(inherited, {
      dockerConfig: '/tmp/scan', tempDir: '/tmp/scan/tmp', hosts: ['contoso.azurecr.io'],
      proxy: { url: 'http://proxy.corp:3128', username: 'agent', password: 'p@ss:word' },
    });
    assert.equal(env.HTTPS_PROXY, 'http://agent:p%40ss%3Aword@proxy.corp:3128/');
    assert.equal(env.NO_PROXY, undefined);
  });

  test("hosts the agent's bypass expressions match go direct", () => {
    const env = trivyEnvironment({ PATH: '/usr/bin' }, {
      dockerConfig: '/tmp/scan', tempDir: '/tmp/scan/tmp', hosts: ['contoso.azurecr.io', 'mirror.corp:5000'],
      proxy: { url: 'http://proxy.corp:3128', bypass: ['\\.corp$'] },
    });
    assert.equal(env.NO_PROXY, 'mirror.corp');
    assert.equal(env.HTTPS_PROXY, 'http://proxy.corp:3128/');
  });
});
