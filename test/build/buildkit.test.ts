// The BuildKit builder's pieces without a daemon: the buildctl argument arrays (as tables), its
// environment, the rawjson progress turned into log lines and counts, the one-line errors, and
// which builder `auto` picks.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { buildctlArgs, buildctlEnvironment, buildctlFailure, certificateFiles, type BuildctlBuild } from '../../src/build/buildctl.js';
import { daemonHost } from '../../src/build/buildkitBuild.js';
import { BuildkitProgress } from '../../src/build/buildkitProgress.js';
import { chooseBuilder } from '../../src/build/buildImage.js';
import type { Logger } from '../../src/log.js';

const CONNECTION = ['--addr', 'tcp://bk.buildkit.svc:1234', '--tlscacert', '/certs/ca.pem', '--tlscert', '/certs/cert.pem', '--tlskey', '/certs/key.pem'];

function minimal(overrides: Partial<BuildctlBuild> = {}): BuildctlBuild {
  return {
    connection: { address: 'tcp://bk.buildkit.svc:1234', caFile: '/certs/ca.pem', certFile: '/certs/cert.pem', keyFile: '/certs/key.pem' },
    dockerfile: '/src/app/Dockerfile',
    context: '/src/app',
    buildArgs: new Map(),
    platforms: ['linux/amd64'],
    labels: {},
    image: 'contoso.azurecr.io/team/web',
    secrets: [],
    metadataFile: '/tmp/task/buildkit-1/metadata.json',
    ...overrides,
  };
}

const HEAD = [...CONNECTION, 'build', '--frontend', 'dockerfile.v0'];
const TAIL = ['--metadata-file', '/tmp/task/buildkit-1/metadata.json', '--progress', 'rawjson'];

void describe('buildctlArgs', () => {
  const cases: [string, Partial<BuildctlBuild>, string[]][] = [
    [
      'the minimum: push by digest only, progress as JSON',
      {},
      [
        ...HEAD,
        '--local', 'context=/src/app', '--local', 'dockerfile=/src/app', '--opt', 'filename=Dockerfile', '--opt', 'platform=linux/amd64',
        '--output', 'type=image,name=contoso.azurecr.io/team/web,push=true,push-by-digest=true',
        ...TAIL,
      ],
    ],
    [
      'a Dockerfile elsewhere, build arguments, target, several platforms and labels',
      {
        dockerfile: '/src/build/web.Dockerfile',
        buildArgs: new Map([['NODE_VERSION', '22'], ['GREETING', 'a=b, c']]),
        target: 'runtime',
        platforms: ['linux/amd64', 'linux/arm64'],
        labels: { 'org.opencontainers.image.revision': 'abc123', team: 'web, api' },
      },
      [
        ...HEAD,
        '--local', 'context=/src/app', '--local', 'dockerfile=/src/build', '--opt', 'filename=web.Dockerfile',
        '--opt', 'build-arg:NODE_VERSION=22', '--opt', 'build-arg:GREETING=a=b, c',
        '--opt', 'target=runtime', '--opt', 'platform=linux/amd64,linux/arm64',
        '--opt', 'label:org.opencontainers.image.revision=abc123', '--opt', 'label:team=web, api',
        '--output', 'type=image,name=contoso.azurecr.io/team/web,push=true,push-by-digest=true',
        ...TAIL,
      ],
    ],
    [
      'build secrets by variable name, the registry cache in mode=max',
      { secrets: [{ id: 'npm_token', variable: 'NPM_TOKEN' }, { id: 'nuget', variable: 'NUGET_PAT' }], cache: 'contoso.azurecr.io/team/web-cache:buildcache' },
      [
        ...HEAD,
        '--local', 'context=/src/app', '--local', 'dockerfile=/src/app', '--opt', 'filename=Dockerfile', '--opt', 'platform=linux/amd64',
        '--secret', 'id=npm_token,env=NPM_TOKEN', '--secret', 'id=nuget,env=NUGET_PAT',
        '--import-cache', 'type=registry,ref=contoso.azurecr.io/team/web-cache:buildcache',
        '--export-cache', 'type=registry,ref=contoso.azurecr.io/team/web-cache:buildcache,mode=max',
        '--output', 'type=image,name=contoso.azurecr.io/team/web,push=true,push-by-digest=true',
        ...TAIL,
      ],
    ],
    [
      'SOURCE_DATE_EPOCH from the pipeline, and an OCI layout whose path needs CSV quoting',
      { sourceDateEpoch: 1700000000, outputPath: '/out/a,"b"' },
      [
        ...HEAD,
        '--local', 'context=/src/app', '--local', 'dockerfile=/src/app', '--opt', 'filename=Dockerfile',
        '--opt', 'build-arg:SOURCE_DATE_EPOCH=1700000000', '--opt', 'platform=linux/amd64',
        '--output', 'type=image,name=contoso.azurecr.io/team/web,push=true,push-by-digest=true,rewrite-timestamp=true',
        '--output', 'type=oci,"dest=/out/a,""b""",tar=false,rewrite-timestamp=true',
        ...TAIL,
      ],
    ],
    [
      'SOURCE_DATE_EPOCH given as a build argument is passed once',
      { sourceDateEpoch: 5, buildArgs: new Map([['SOURCE_DATE_EPOCH', '5']]) },
      [
        ...HEAD,
        '--local', 'context=/src/app', '--local', 'dockerfile=/src/app', '--opt', 'filename=Dockerfile',
        '--opt', 'build-arg:SOURCE_DATE_EPOCH=5', '--opt', 'platform=linux/amd64',
        '--output', 'type=image,name=contoso.azurecr.io/team/web,push=true,push-by-digest=true,rewrite-timestamp=true',
        ...TAIL,
      ],
    ],
  ];
  for (const [name, overrides, expected] of cases) {
    test(name, () => assert.deepEqual(buildctlArgs(minimal(overrides)), expected));
  }

  test('no secret value is ever an argument: secrets are named by their variables', () => {
    const args = buildctlArgs(minimal({ secrets: [{ id: 'token', variable: 'MY_TOKEN' }] }));
    assert.ok(args.every((arg) => !arg.includes('value-of-the-token')));
    assert.ok(args.includes('id=token,env=MY_TOKEN'));
  });
});

void describe('buildctlEnvironment', () => {
  test('drops what would hand the daemon a login or add one, points DOCKER_CONFIG at the private folder, applies the network changes', () => {
    const env = buildctlEnvironment(
      { PATH: '/usr/bin', NPM_TOKEN: 'kept for --secret env=', BUILDKIT_NO_CLIENT_TOKEN: 'true', DOCKER_CONFIG: '/home/agent/.docker', REGISTRY_AUTH_FILE: '/x', BUILDKIT_HOST: 'tcp://elsewhere:1', HTTPS_PROXY: 'http://old' },
      '/tmp/task/buildkit-1',
      { SSL_CERT_FILE: '/tmp/task/buildkit-1/ca-bundle.pem', HTTPS_PROXY: undefined },
    );
    assert.deepEqual(env, { PATH: '/usr/bin', NPM_TOKEN: 'kept for --secret env=', DOCKER_CONFIG: '/tmp/task/buildkit-1', SSL_CERT_FILE: '/tmp/task/buildkit-1/ca-bundle.pem' });
  });
});

void describe('certificateFiles and daemonHost', () => {
  test("BuildKit's file names, or a kubernetes.io/tls Secret's", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'buildkit-certs-'));
    try {
      for (const name of ['ca.crt', 'tls.crt', 'tls.key']) await writeFile(join(dir, name), 'x');
      assert.deepEqual(await certificateFiles(dir, 'buildkitCertificates'), { caFile: join(dir, 'ca.crt'), certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') });
      for (const name of ['ca.pem', 'cert.pem', 'key.pem']) await writeFile(join(dir, name), 'x');
      assert.deepEqual(await certificateFiles(dir, 'buildkitCertificates'), { caFile: join(dir, 'ca.pem'), certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') });
      await rm(join(dir, 'tls.key'));
      await rm(join(dir, 'key.pem'));
      await assert.rejects(certificateFiles(dir, 'buildkitCertificates'), /^UserError: Input 'buildkitCertificates': .* has no key\.pem or tls\.key; give the folder with the BuildKit client certificate/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  const addresses: [string, string | RegExp][] = [
    ['tcp://pool-buildkit.pool-buildkit.svc:1234', 'pool-buildkit.pool-buildkit.svc:1234'],
    ['tcp://10.0.0.7:1234/', '10.0.0.7:1234'],
    ['buildkitd:1234', /'buildkitd:1234' is not tcp:\/\/host:port/],
    ['tcp://buildkitd', /is not tcp:\/\/host:port/],
    ['unix:///run/buildkit/buildkitd.sock', /is not tcp:\/\/host:port/],
  ];
  for (const [address, expected] of addresses) {
    test(address, () => {
      if (typeof expected === 'string') assert.equal(daemonHost(address), expected);
      else assert.throws(() => daemonHost(address), expected);
    });
  }
});

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (line) => lines.push(line), warn: (line) => lines.push(`WARN ${line}`), debug: () => undefined };
}

const base64 = (text: string) => Buffer.from(text).toString('base64');
const at = (seconds: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, seconds)).toISOString();

/** A build as BuildKit reports it: the graph up front, a cached COPY, a RUN with output on both streams that fails. */
const FAILING_BUILD = [
  { vertexes: [{ digest: 'sha256:from', name: '[1/3] FROM contoso.azurecr.io/base/node:22' }, { digest: 'sha256:copy', name: '[2/3] COPY . .' }, { digest: 'sha256:run', name: '[3/3] RUN npm ci' }] },
  { vertexes: [{ digest: 'sha256:from', name: '[1/3] FROM contoso.azurecr.io/base/node:22', started: at(0), completed: at(1) }] },
  { statuses: [{ id: 'resolve contoso.azurecr.io/base/node:22', vertex: 'sha256:from', current: 0, started: at(0), completed: at(1) }] },
  { vertexes: [{ digest: 'sha256:copy', name: '[2/3] COPY . .', started: at(1), completed: at(1), cached: true }] },
  { vertexes: [{ digest: 'sha256:run', name: '[3/3] RUN npm ci', started: at(1) }] },
  { logs: [{ vertex: 'sha256:run', stream: 1, data: base64('added 10 packages\nnpm warn dep') }] },
  { logs: [{ vertex: 'sha256:run', stream: 1, data: base64('recated\n') }, { vertex: 'sha256:run', stream: 2, data: base64('npm error code E401') }] },
  { vertexes: [{ digest: 'sha256:run', name: '[3/3] RUN npm ci', started: at(1), completed: at(4), error: 'process "/bin/sh -c npm ci" did not complete successfully: exit code: 1' }] },
];

void describe('BuildkitProgress', () => {
  test('the log: steps numbered as they start, output lines, CACHED, DONE with seconds, finished transfers, the error', () => {
    const logger = recordingLogger();
    const progress = new BuildkitProgress(logger);
    for (const status of FAILING_BUILD) assert.equal(progress.line(JSON.stringify(status)), true);
    assert.deepEqual(logger.lines, [
      '#1 [1/3] FROM contoso.azurecr.io/base/node:22',
      '#1 DONE 1.0s',
      '#1 resolve contoso.azurecr.io/base/node:22 1.0s done',
      '#2 [2/3] COPY . .',
      '#2 CACHED',
      '#3 [3/3] RUN npm ci',
      '#3 added 10 packages',
      '#3 npm warn deprecated',
      '#3 npm error code E401',
      '#3 ERROR: process "/bin/sh -c npm ci" did not complete successfully: exit code: 1',
    ]);
    assert.deepEqual(progress.counts(), { total: 3, cached: 1 });
    assert.deepEqual(progress.failedStep(), { name: '[3/3] RUN npm ci', error: 'process "/bin/sh -c npm ci" did not complete successfully: exit code: 1', output: ['added 10 packages', 'npm warn deprecated', 'npm error code E401'] });
  });

  test('internal vertices are logged but are not Dockerfile steps; warnings become warnings; other lines are not progress', () => {
    const logger = recordingLogger();
    const progress = new BuildkitProgress(logger);
    progress.line(JSON.stringify({ vertexes: [{ digest: 'sha256:a', name: '[internal] load build definition from Dockerfile', started: at(0), completed: at(0) }] }));
    progress.line(JSON.stringify({ vertexes: [{ digest: 'sha256:b', name: '[linux/arm64 build 2/4] RUN make', started: at(0), completed: at(2) }] }));
    progress.line(JSON.stringify({ warnings: [{ vertex: 'sha256:b', short: base64('SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ARG "TOKEN")') }] }));
    assert.equal(progress.line('error: failed to solve: process "/bin/sh -c make" did not complete successfully: exit code: 2'), false);
    assert.equal(progress.line('{not json'), false);
    assert.deepEqual(progress.counts(), { total: 1, cached: 0 });
    assert.deepEqual(logger.lines, [
      '#1 [internal] load build definition from Dockerfile',
      '#1 DONE 0.0s',
      '#2 [linux/arm64 build 2/4] RUN make',
      '#2 DONE 2.0s',
      'WARN BuildKit (#2): SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ARG "TOKEN")',
    ]);
  });
});

void describe('buildctlFailure', () => {
  const describeDaemon = { address: 'tcp://pool-buildkit.pool-buildkit.svc:1234', certificates: '/azp/buildkit' };
  const beforeAnyProgress = () => new BuildkitProgress(recordingLogger());

  const connectionFailures: [string, string, RegExp][] = [
    [
      'a client certificate the daemon rejects (TLS 1.3 reports it on the first write)',
      'error: listing workers for Build: failed to list workers: Unavailable: write tcp 10.0.0.5:45118->10.0.0.9:1234: write: broken pipe',
      /^The BuildKit daemon at tcp:\/\/pool-buildkit\.pool-buildkit\.svc:1234 refused the client certificate in \/azp\/buildkit \(broken pipe\): it accepts only certificates from the CA it was given\./,
    ],
    [
      'no client certificate at all',
      'error: listing workers for Build: failed to list workers: Unavailable: connection error: desc = "error reading server preface: remote error: tls: certificate required"',
      /refused the client certificate in \/azp\/buildkit \(certificate required\)/,
    ],
    [
      "a daemon certificate ca.pem does not vouch for",
      'error: listing workers for Build: failed to list workers: Unavailable: connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority (possibly because of \\"x509: ECDSA verification failure\\" while trying to verify candidate authority certificate \\"test CA\\")"',
      /^The BuildKit daemon at tcp:\/\/pool-buildkit\.pool-buildkit\.svc:1234 presented a certificate that ca\.pem in \/azp\/buildkit does not vouch for \(x509: certificate signed by unknown authority\): use the CA that issued/,
    ],
    [
      'nothing listening',
      'error: listing workers for Build: failed to list workers: Unavailable: connection error: desc = "transport: Error while dialing: dial tcp 10.0.0.9:1234: connect: connection refused"',
      /^Cannot reach the BuildKit daemon at tcp:\/\/pool-buildkit\.pool-buildkit\.svc:1234 \(connection refused\): check buildkitAddress, that the builder is running, and that its NetworkPolicy admits this agent\.$/,
    ],
    [
      'a name that does not resolve',
      'error: listing workers for Build: failed to list workers: Unavailable: connection error: desc = "transport: Error while dialing: dial tcp: lookup pool-buildkit.pool-buildkit.svc on 10.0.0.10:53: no such host"',
      /^Cannot reach the BuildKit daemon at .* \(no such host\)/,
    ],
  ];
  for (const [name, line, expected] of connectionFailures) {
    test(name, () => assert.match(buildctlFailure([line], beforeAnyProgress(), describeDaemon).message, expected));
  }

  test('a failed step: the file and line BuildKit printed, the step, its exit code and last output lines', () => {
    const progress = new BuildkitProgress(recordingLogger());
    for (const status of FAILING_BUILD) progress.line(JSON.stringify(status));
    const text = ['Dockerfile:3', '--------------------', '   2 |     COPY . .', '   3 | >>> RUN npm ci', '--------------------', 'error: failed to solve: process "/bin/sh -c npm ci" did not complete successfully: exit code: 1'];
    assert.equal(buildctlFailure(text, progress, describeDaemon).message, 'Dockerfile:3: RUN npm ci failed with exit code 1; its last output: added 10 packages | npm warn deprecated | npm error code E401');
  });

  test('a step that failed without exiting (a COPY source missing): BuildKit\'s reason', () => {
    const progress = new BuildkitProgress(recordingLogger());
    progress.line(JSON.stringify({ vertexes: [{ digest: 'sha256:c', name: '[2/2] COPY missing /', started: at(0), completed: at(0), error: 'failed to calculate checksum of ref 1::2: "/missing": not found' }] }));
    const text = ['web.Dockerfile:2', '--------------------', 'error: failed to solve: failed to compute cache key: failed to calculate checksum of ref 1::2: "/missing": not found'];
    assert.equal(buildctlFailure(text, progress, describeDaemon).message, 'web.Dockerfile:2: COPY missing / failed: failed to calculate checksum of ref 1::2: "/missing": not found');
  });

  test('anything else: BuildKit\'s own message', () => {
    const progress = new BuildkitProgress(recordingLogger());
    progress.line(JSON.stringify({ vertexes: [{ digest: 'sha256:x', name: 'exporting to image', started: at(0) }] }));
    assert.equal(buildctlFailure(['error: failed to solve: failed to push contoso.azurecr.io/team/web: unexpected status 403 Forbidden'], progress, describeDaemon).message, 'BuildKit failed: failed to push contoso.azurecr.io/team/web: unexpected status 403 Forbidden');
  });
});

void describe('chooseBuilder', () => {
  const run = [{ where: 'Dockerfile:4', reason: 'RUN needs a container runtime' }];
  const cases: [string, Parameters<typeof chooseBuilder>, 'assemble' | 'buildkit' | RegExp][] = [
    ['auto without a runtime step: assemble, even with a daemon', ['auto', [], { address: 'tcp://bk:1234' }], 'assemble'],
    ['auto with RUN and a daemon: BuildKit', ['auto', run, { address: 'tcp://bk:1234' }], 'buildkit'],
    ['auto with RUN and no daemon: the RUN line', ['auto', run, {}], /^UserError: Dockerfile:4: RUN needs a container runtime, which the assemble builder does not do, and no BuildKit daemon is set: give buildkitAddress/],
    ['auto with two steps: the first, and how many more', ['auto', [...run, { where: 'Dockerfile:6', reason: 'RUN needs a container runtime' }], {}], /^UserError: Dockerfile:4: .*\(and 1 more step\(s\)\)/],
    ['assemble is taken as asked (it names the RUN line itself)', ['assemble', run, { address: 'tcp://bk:1234' }], 'assemble'],
    ['buildkit is taken as asked', ['buildkit', [], {}], 'buildkit'],
  ];
  for (const [name, args, expected] of cases) {
    test(name, () => {
      if (typeof expected === 'string') assert.equal(chooseBuilder(...args), expected);
      else assert.throws(() => chooseBuilder(...args), expected);
    });
  }
});
