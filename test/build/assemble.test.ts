// The assemble core against the real registry, read through the product's registry session:
// reproducible digests, base layers left alone unless an answer needs them (counted on the wire),
// multi-platform bases, and one clear line for every way a build can be wrong.
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, symlink, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assembleImage, writeAssembledLayout, type AssembleOptions } from '../../src/build/assemble.js';
import { UserError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { startAcrEnvironment, type AcrEnvironment, type RegistryClientTrust } from '../env/environment.js';
import { pushBase, writeBusyboxBase } from '../fixtures/baseImages.js';
import { folderWith } from '../fixtures/files.js';
import { imageContents } from '../support/imageFiles.js';
import { coreSession } from '../support/registryIdentities.js';
import type { RegistrySession } from '../../src/acr/session.js';
import { RegistryImageReader } from '../../src/build/registryImages.js';

let env: AcrEnvironment;
let work: string;
let trust: RegistryClientTrust;
let base: string;
let multiBase: string;
let session: RegistrySession;


before(async () => {
  work = await mkdtemp(join(tmpdir(), 'assemble-core-'));
  env = await startAcrEnvironment({ withFaultProxy: true });
  trust = await env.createClientTrust({ role: 'push' });
  // Docker media types, as images copied from Docker Hub have; the multi-platform base is OCI.
  await writeBusyboxBase(join(work, 'base'));
  await pushBase(join(work, 'base'), trust, 'base/busybox', '1', { dockerMediaTypes: true });
  await writeBusyboxBase(join(work, 'multi'), { architectures: ['amd64', 'arm64'] });
  await pushBase(join(work, 'multi'), trust, 'base/multi', '1');
  base = `${env.registryHost}/base/busybox:1`;
  multiBase = `${env.registryHost}/base/multi:1`;
  session = coreSession(env);
});

after(async () => {
  await session?.close();
  await env?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** A build context with these files (the Dockerfile among them). */
function context(files: Record<string, string>): Promise<string> {
  return folderWith(work, files);
}

function assemble(dir: string, options: Partial<AssembleOptions> = {}) {
  const reader = new RegistryImageReader(session, work);
  return {
    reader,
    image: assembleImage({
      dockerfile: join(dir, 'Dockerfile'),
      context: dir,
      buildArgs: new Map(),
      platforms: [{ os: 'linux', architecture: 'amd64' }],
      labels: {},
      reader,
      tempDir: work,
      logger: silentLogger,
      ...options,
    }),
  };
}

/** Digests of the blobs GET from the registry since request number `from`. */
function blobReads(from: number): string[] {
  return env.proxy!.requests.slice(from).filter((request) => request.method === 'GET' && /\/blobs\/sha256:/.test(request.path)).map((request) => request.path.slice(request.path.indexOf('sha256:')));
}

async function digestOf(dir: string, options: Partial<AssembleOptions> = {}): Promise<string> {
  const image = await assemble(dir, options).image;
  await image.close();
  return image.root.digest;
}

describe('reproducible', () => {
  test('copies of a context with other mtimes, built at other times, give the same digest', async () => {
    const first = await context({ Dockerfile: `FROM ${base}\nWORKDIR /app\nCOPY . .\nCMD ["ls"]\n`, 'a/b.txt': 'b\n', 'c.txt': 'c\n' });
    const second = await mkdtemp(join(work, 'copy-'));
    await cp(first, second, { recursive: true });
    for (const path of ['a/b.txt', 'c.txt', 'a', 'Dockerfile']) await utimes(join(second, path), new Date('2031-05-06'), new Date('2031-05-06'));
    const one = await digestOf(first);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    assert.equal(await digestOf(second), one);
    // SOURCE_DATE_EPOCH changes the time stamps, so the digest, as it should.
    assert.notEqual(await digestOf(second, { sourceDateEpoch: 1700000000 }), one);
  });

  test('base layers are not downloaded when no answer depends on them', async () => {
    const dir = await context({ Dockerfile: `FROM ${base}\nWORKDIR /app\nCOPY site/ ./\nUSER 1000\n`, 'site/index.html': '<p>hi</p>\n' });
    const before = env.proxy!.requests.length;
    const built = await assemble(dir).image;
    await built.close();
    const layers = built.images[0].layers.filter((layer) => layer.kind === 'base').map((layer) => layer.descriptor.digest);
    assert.equal(layers.length, 1);
    assert.ok(!blobReads(before).some((digest) => layers.includes(digest)), 'a base layer was read');
  });

  test('a COPY into a path only the base can resolve downloads its layers once', async () => {
    const dir = await context({ Dockerfile: `FROM ${base}\nCOPY tool /usr/local/bin\nCOPY --chown=app tool /opt/data/tool\n`, tool: '#!/bin/sh\n' });
    const before = env.proxy!.requests.length;
    const built = await assemble(dir).image;
    await built.close();
    const [layer] = built.images[0].layers.filter((entry) => entry.kind === 'base');
    // Once for the file list; /etc/passwd is read from that same download.
    assert.equal(blobReads(before).filter((digest) => digest === layer.descriptor.digest).length, 1);
  });
});

describe('multi-platform', () => {
  test('each platform is built from its own base into one index', async () => {
    const dir = await context({ Dockerfile: `FROM ${multiBase}\nCOPY --from=${multiBase} /etc/platform /copied-platform\n` });
    const { image, reader } = assemble(dir, {
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
    });
    const built = await image;
    const out = join(work, 'multi-out');
    try {
      await writeAssembledLayout(built, reader, out);
    } finally {
      await built.close();
    }
    assert.equal(built.root.mediaType, 'application/vnd.oci.image.index.v1+json');
    for (const architecture of ['amd64', 'arm64']) {
      const contents = await imageContents(out, architecture);
      assert.equal(contents.config.architecture, architecture);
      const copied = contents.files.find((line) => line.startsWith('copied-platform\t'));
      const original = contents.files.find((line) => line.startsWith('etc/platform\t'));
      assert.ok(copied && original);
      assert.equal(copied.split('\t').at(-1), original.split('\t').at(-1), `${architecture} copied its own /etc/platform`);
    }
  });
});

describe('one clear line for each mistake', () => {
  const cases: [string, Record<string, string>, Partial<AssembleOptions>, RegExp][] = [
    ['RUN, with file and line', { Dockerfile: `FROM ${'X'}\nCOPY a /a\nRUN make\n`, a: '' }, {}, /^Dockerfile:3: RUN needs a container runtime, which the assemble builder does not do\. Move the step into a script step before this task, or use builder: buildkit\.$/],
    ['ADD of a URL', { Dockerfile: 'FROM scratch\nADD https://example.com/x.tgz /x\n' }, {}, /^Dockerfile:2: ADD https:\/\/example\.com\/x\.tgz downloads at build time/],
    ['a missing base', { Dockerfile: 'FROM REGISTRY/base/nothing:1\n' }, {}, /^Dockerfile:1: the base image .*\/base\/nothing:1 does not exist in its registry/],
    ['a platform the base lacks', { Dockerfile: 'FROM MULTI\n' }, { platforms: [{ os: 'linux', architecture: 's390x' }] }, /^Dockerfile:1: the base image .*base\/multi:1 has no linux\/s390x image \(it has linux\/amd64, linux\/arm64\)/],
    ['a missing COPY source', { Dockerfile: 'FROM scratch\nCOPY missing.txt /\n' }, {}, /^Dockerfile:2: COPY source missing\.txt was not found in the build context\./],
    ['a COPY source the .dockerignore excludes', { Dockerfile: 'FROM scratch\nCOPY secret.txt /\n', '.dockerignore': 'secret.txt\n', 'secret.txt': 's' }, {}, /not found in the build context.*\.dockerignore/],
    ['a symlink leaving the context', { Dockerfile: 'FROM scratch\nCOPY link /\n' }, {}, /^COPY source link: the symbolic link link → \/etc\/hostname in the build context points outside it/],
    ['an unknown target stage', { Dockerfile: 'FROM scratch AS one\n' }, { target: 'two' }, /^Input 'target': the Dockerfile has no stage named 'two' \(stages: one\)\.$/],
    ['COPY --from a stage defined later', { Dockerfile: 'FROM scratch AS one\nCOPY --from=two /x /x\nFROM scratch AS two\n' }, { target: 'one' }, /^Dockerfile:2: cannot copy from stage "two", it needs to be defined before current stage "one"\.$/],
    ['an unknown user in --chown', { Dockerfile: 'FROM BASE\nCOPY --chown=ghost a /a\n', a: '' }, {}, /^Dockerfile:2: the user 'ghost' is not in this stage's \/etc\/passwd/],
    ['a bad --chmod', { Dockerfile: 'FROM scratch\nCOPY --chmod=999 a /a\n', a: '' }, {}, /^Dockerfile:2: invalid chmod parameter: '999'/],
    ['a syntax error in a variable', { Dockerfile: 'FROM scratch\nENV A=${B\n' }, {}, /^Dockerfile:2: syntax error: missing '}'$/],
  ];
  for (const [name, files, options, message] of cases) {
    test(name, async () => {
      const resolved = Object.fromEntries(Object.entries(files).map(([path, content]) => [path, content.replace('REGISTRY', env.registryHost).replace('MULTI', multiBase).replace('BASE', base).replace('FROM X', `FROM ${base}`)]));
      const dir = await context(resolved);
      if (name === 'a symlink leaving the context') await symlink('/etc/hostname', join(dir, 'link'));
      await assert.rejects(
        (async () => (await assemble(dir, options).image).close())(),
        (error: Error) => {
          assert.ok(error instanceof UserError, `${error.name}: ${error.message}`);
          assert.match(error.message, message);
          assert.ok(!error.message.includes('\n'));
          return true;
        },
      );
    });
  }
});
