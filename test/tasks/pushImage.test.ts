// PrivateAcrPushImage@1 end to end: the bundled task, run as the agent runs it, pushes into the real
// registry behind the Azure stand-ins; skopeo checks what landed. One environment for the file.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { InjectedFault } from '../env/faults.js';
import { startForwardProxy } from '../env/proxy.js';
import { startAcrEnvironment, registryTrustArgs, type AcrEnvironment, type RegistryClientTrust } from '../env/environment.js';
import { runTool } from '../env/processes.js';
import { makeLayers, sha256, writeDockerSave, writeLargeLayout, writeOciLayout, archiveFolder } from '../fixtures/images.js';
import {
  agentManagedIdentity,
  agentWorkloadIdentity,
  assertFailedWith,
  assertNoSecretPrinted,
  assertSucceeded,
  certificateIdentity,
  federatedIdentity,
  managedIdentityConnection,
  registryTokenIdentity,
  secretConnection,
  type RegistryIdentity,
} from '../support/registryIdentities.js';
import { runTask, type TaskRun, type TaskRunOptions } from '../support/taskRunner.js';

const TASK = 'PrivateAcrPushImage';
let env: AcrEnvironment;
let work: string;
let reader: RegistryClientTrust;

before(async () => {
  env = await startAcrEnvironment({ withFaultProxy: true });
  work = await mkdtemp(join(tmpdir(), 'push-image-test-'));
  reader = await env.createClientTrust({ role: 'pull', host: env.registry.host });
});

after(async () => {
  await env?.stop();
  await rm(work, { recursive: true, force: true });
});

let imageCounter = 0;
/** A fresh small OCI layout with distinct content, so every test starts from blobs the registry lacks. */
async function freshLayout(layers = 3): Promise<{ path: string; digest: string; blobDigests: string[] }> {
  const path = join(work, `layout-${++imageCounter}`);
  const written = await writeOciLayout(path, { layers: makeLayers(layers, 64 * 1024, 100 + imageCounter) });
  return { path, ...written };
}

/**
 * Runs the task with a fresh push-capable service principal unless `options` brings its own
 * identity; inputs default to the registry (through the fault proxy), team/app and tag 1.0.0.
 */
async function push(inputs: TaskRunOptions['inputs'], options: Omit<TaskRunOptions, 'inputs'> = {}): Promise<TaskRun> {
  const connections = options.connections ?? { arm: secretConnection(env) };
  const run = await runTask(TASK, {
    ...options,
    connections,
    inputs: { azureSubscription: 'arm', registry: env.registryHost, repository: 'team/app', tags: '1.0.0', ...inputs },
    env: { NODE_EXTRA_CA_CERTS: env.ca.caCertPath, ...options.env },
  });
  assertNoSecretPrinted(env, run);
  return run;
}

/** Pushes a fresh image as `identity`. */
async function pushAs(identity: RegistryIdentity, image: { path: string }): Promise<TaskRun> {
  return push({ imagePath: image.path, ...identity.inputs }, identity.options);
}

async function skopeo(args: string[]): Promise<string> {
  return (await runTool('skopeo', args, { timeoutMs: 60_000 })).stdout;
}

/** The manifest the registry serves for `ref`, by raw bytes (their digest is what the tag points at). */
async function servedDigest(repository: string, reference: string): Promise<string> {
  const raw = await skopeo(['inspect', '--raw', ...registryTrustArgs.skopeo(reader), `docker://${env.registry.host}/${repository}:${reference}`]);
  return sha256(Buffer.from(raw, 'utf8'));
}

async function tagExists(repository: string, tag: string): Promise<boolean> {
  try {
    await servedDigest(repository, tag);
    return true;
  } catch {
    return false;
  }
}

/** Pulls every blob through skopeo, which checks each against its digest. */
async function pullAll(repository: string, tag: string): Promise<void> {
  const target = await mkdtemp(join(work, 'pulled-'));
  await skopeo(['copy', '--all', ...registryTrustArgs.skopeoSource(reader), `docker://${env.registry.host}/${repository}:${tag}`, `oci:${target}:pulled`]);
}

describe('every identity pushes', () => {
  test('service principal with a secret: token for the ACR audience from the connection authority', async () => {
    const image = await freshLayout();
    const entraBefore = env.entra.tokenRequests.length;
    const run = await push({ imagePath: image.path, tags: '1.0.0\nlatest' });
    assertSucceeded(run);
    assert.equal(run.outputs.digest, image.digest);
    assert.equal(run.outputs.imageRef, `${env.registryHost}/team/app@${image.digest}`);
    assert.equal(await servedDigest('team/app', '1.0.0'), image.digest);
    assert.equal(await servedDigest('team/app', 'latest'), image.digest);
    await pullAll('team/app', '1.0.0');
    const requests = env.entra.tokenRequests.slice(entraBefore);
    assert.ok(requests.length >= 1);
    for (const request of requests) {
      assert.equal(request.scope, 'https://containerregistry.azure.net/.default');
      assert.equal(request.host, new URL(env.entra.url).host);
      assert.equal(request.path, `/${env.entra.tenantId}/oauth2/v2.0/token`);
    }
    assert.match(run.summaries.join('\n'), new RegExp(image.digest));
  });
});

describe('every identity pushes (continued)', () => {
  test('service principal with a certificate: a signed client assertion, no secret', async () => {
    const identity = await certificateIdentity(env);
    const image = await freshLayout();
    const run = await pushAs(identity, image);
    assertSucceeded(run);
    assert.equal(await servedDigest('team/app', '1.0.0'), image.digest);
    const mine = env.entra.tokenRequests.filter((request) => request.clientId === identity.clientId);
    assert.ok(mine.length > 0 && mine.every((request) => request.credentialType === 'certificate' && request.status === 200));
  });

  test('workload identity federation: an ID token from the job OIDC endpoint for each Entra request', async () => {
    const identity = federatedIdentity(env);
    const devopsBefore = env.devops.requests.length;
    const image = await freshLayout();
    const run = await pushAs(identity, image);
    assertSucceeded(run);
    assert.equal(await servedDigest('team/app', '1.0.0'), image.digest);
    const oidcRequests = env.devops.requests.slice(devopsBefore);
    const entraRequests = env.entra.tokenRequests.filter((request) => request.clientId === identity.clientId);
    assert.ok(oidcRequests.length > 0 && oidcRequests.every((request) => request.authorized && request.serviceConnectionId === identity.serviceConnectionId));
    assert.equal(oidcRequests.length, entraRequests.length, 'one fresh ID token per Entra request');
  });

  test('managed identity connection: the node identity through IMDS', async () => {
    const image = await freshLayout();
    assertSucceeded(await pushAs(managedIdentityConnection(env), image));
    assert.equal(await servedDigest('team/app', '1.0.0'), image.digest);
  });

  test('agent identity: a user-assigned managed identity named by AZURE_CLIENT_ID', async () => {
    const identity = agentManagedIdentity(env);
    assertSucceeded(await pushAs(identity, await freshLayout()));
    assert.ok(env.entra.tokenRequests.some((request) => request.clientId === identity.clientId && request.status === 200));
  });

  test('agent identity: AKS workload identity from the projected token file', async () => {
    const image = await freshLayout();
    assertSucceeded(await pushAs(await agentWorkloadIdentity(env, work), image));
    assert.equal(await servedDigest('team/app', '1.0.0'), image.digest);
  });

  test('registry credentials: a repository-scoped token as username and password', async () => {
    const image = await freshLayout();
    assertSucceeded(await pushAs(registryTokenIdentity(env, ['team/app']), image));
    assert.equal(await servedDigest('team/app', '1.0.0'), image.digest);
  });
});

describe('image inputs', () => {
  test('an unchanged image pushed again uploads no blob', async () => {
    const image = await freshLayout();
    assertSucceeded(await push({ imagePath: image.path, repository: 'team/again' }));
    const before = env.proxy!.requests.length;
    assertSucceeded(await push({ imagePath: image.path, repository: 'team/again', tags: '1.0.1' }));
    const second = env.proxy!.requests.slice(before);
    assert.deepEqual(second.filter((request) => request.method === 'POST' || request.method === 'PATCH'), []);
    assert.equal(second.filter((request) => request.method === 'HEAD' && request.status === 200).length, image.blobDigests.length);
    assert.equal(await servedDigest('team/again', '1.0.1'), image.digest);
  });

  test('a multi-platform index, flat in index.json or nested, goes up whole', async () => {
    for (const nested of [false, true]) {
      const path = join(work, `multi-${nested}`);
      const image = await writeOciLayout(path, { layers: makeLayers(2, 32 * 1024, nested ? 7 : 8), platforms: ['amd64', 'arm64'], nested });
      const run = await push({ imagePath: path, repository: 'team/multi', tags: `nested-${nested}` });
      assertSucceeded(run);
      assert.equal(run.outputs.digest, image.digest);
      assert.equal(await servedDigest('team/multi', `nested-${nested}`), image.digest);
      await pullAll('team/multi', `nested-${nested}`);
    }
  });

  const saves = [
    { name: 'before Docker 25', format: 'legacy', compressedLayers: false, seed: 21 },
    { name: 'Docker 25+', format: 'oci', compressedLayers: false, seed: 22 },
    { name: 'Docker 25+ with the containerd image store, layers gzipped', format: 'oci', compressedLayers: true, seed: 23 },
  ] as const;
  for (const save of saves) {
    for (const gzip of [false, true]) {
      test(`a docker save tarball (${save.name}${gzip ? ', gzipped' : ''}) is pushed, a repeated layer once`, async () => {
        const layers = makeLayers(3, 200 * 1024, save.seed + (gzip ? 10 : 0));
        layers.push(layers[0]); // a repeated layer: docker save links it, or stores it once
        const tag = `${save.seed}-${gzip}`;
        const path = join(work, `save-${tag}.tar${gzip ? '.gz' : ''}`);
        const saved = await writeDockerSave(path, { layers, format: save.format, compressedLayers: save.compressedLayers, workDir: await mkdtemp(join(work, 'save-')), gzip });
        const before = env.proxy!.requests.length;
        const run = await push({ imagePath: path, repository: 'team/saved', tags: tag });
        assertSucceeded(run);
        // The config and three distinct layers: the repeated one is compressed and uploaded once.
        const uploads = env.proxy!.requests.slice(before).filter((request) => request.method === 'POST' && /\/blobs\/uploads\/$/.test(request.path));
        assert.equal(uploads.length, 4);
        const config = JSON.parse(await skopeo(['inspect', '--config', '--raw', ...registryTrustArgs.skopeo(reader), `docker://${env.registry.host}/team/saved:${tag}`])) as {
          rootfs: { diff_ids: string[] };
        };
        assert.deepEqual(config.rootfs.diff_ids, saved.diffIds);
        const manifest = JSON.parse(await skopeo(['inspect', '--raw', ...registryTrustArgs.skopeo(reader), `docker://${env.registry.host}/team/saved:${tag}`])) as {
          mediaType: string;
          config: { digest: string };
          layers: { mediaType: string; digest: string }[];
        };
        assert.equal(manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
        assert.equal(manifest.config.digest, saved.configDigest);
        assert.ok(manifest.layers.every((layer) => layer.mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip'));
        assert.equal(manifest.layers[3].digest, manifest.layers[0].digest);
        // Layers saved gzipped go up byte for byte.
        if (save.compressedLayers) assert.deepEqual(manifest.layers.map((layer) => layer.digest), saved.layerDigests);
        await pullAll('team/saved', tag);
        // Compression is deterministic: the same tarball again finds every layer in place.
        const again = env.proxy!.requests.length;
        assertSucceeded(await push({ imagePath: path, repository: 'team/saved', tags: tag }));
        assert.equal(env.proxy!.requests.slice(again).filter((request) => request.method === 'PATCH' || request.method === 'POST').length, 0);
      });
    }
  }

  test('an OCI archive (a tar of a layout) pushes byte for byte', async () => {
    const image = await freshLayout();
    const archive = join(work, 'image.oci.tar');
    await archiveFolder(image.path, archive);
    const run = await push({ imagePath: archive, repository: 'team/archive' });
    assertSucceeded(run);
    assert.equal(run.outputs.digest, image.digest);
    await pullAll('team/archive', '1.0.0');
  });

  test('registry given as host:port with the token endpoints taken from the challenge realm', async () => {
    const image = await freshLayout();
    const tokenRequestsBefore = env.tokenServer.requests.length;
    const run = await push({ imagePath: image.path, registry: `https://${env.registry.host}/`, repository: 'team/direct' });
    assertSucceeded(run);
    assert.equal(run.outputs.imageRef, `${env.registry.host}/team/direct@${image.digest}`);
    const paths = env.tokenServer.requests.slice(tokenRequestsBefore).map((request) => request.path);
    assert.deepEqual([...new Set(paths)].sort(), ['/oauth2/exchange', '/oauth2/token']);
  });
});

describe("the agent's network settings", () => {
  test('a private CA from the agent certificate settings (Agent.CAInfo) instead of NODE_EXTRA_CA_CERTS', async () => {
    const image = await freshLayout(1);
    const run = await push({ imagePath: image.path, repository: 'team/agent-ca' }, { env: { NODE_EXTRA_CA_CERTS: '' }, variables: { 'Agent.CAInfo': env.ca.caCertPath } });
    assertSucceeded(run);
    assert.equal(await servedDigest('team/agent-ca', '1.0.0'), image.digest);
  });

  test("the agent's proxy with credentials carries every call but the bypassed ones", async () => {
    const proxy = await startForwardProxy({ dir: join(work, 'proxy'), username: 'build', password: randomBytes(12).toString('hex') });
    try {
      const image = await freshLayout(1);
      const entraHost = new URL(env.entra.url).host;
      const variables = {
        'Agent.ProxyUrl': proxy.url,
        'Agent.ProxyUsername': proxy.username,
        'Agent.ProxyPassword': proxy.password,
        'Agent.ProxyBypassList': JSON.stringify([`^https://${entraHost.replaceAll('.', '\\.')}/`]),
      };
      const run = await push({ imagePath: image.path, repository: 'team/proxied' }, { variables });
      assertSucceeded(run);
      assert.ok(!run.maskedOutput.includes(proxy.password), 'the proxy password was printed');
      const tunnels = new Set(await proxy.tunnels());
      assert.ok(tunnels.has(env.registryHost), `no tunnel to the registry in ${[...tunnels].join(', ')}`);
      assert.ok(tunnels.has(new URL(env.tokenServer.url).host), 'the token server was reached directly');
      assert.ok(!tunnels.has(entraHost), 'the bypassed Entra host went through the proxy');
      assert.equal(await servedDigest('team/proxied', '1.0.0'), image.digest);

      const refused = await push({ imagePath: image.path, repository: 'team/proxied', tags: 'refused' }, { variables: { ...variables, 'Agent.ProxyPassword': 'wrong' } });
      assertFailedWith(refused, /proxy 127\.0\.0\.1:\d+ refused CONNECT .* HTTP 40[17]: check the agent's proxy settings/);
      assert.equal(await tagExists('team/proxied', 'refused'), false);
    } finally {
      await proxy.stop();
    }
  });
});

describe('failures name their cause and move no tag', () => {
  let image: { path: string; digest: string };
  let counter = 0;
  before(async () => {
    image = await freshLayout(2);
  });

  /** Runs a push expected to fail under a tag nobody else uses, and checks that tag never appears. */
  async function failingPush(pattern: RegExp, inputs: TaskRunOptions['inputs'], options: Omit<TaskRunOptions, 'inputs'> = {}): Promise<TaskRun> {
    const tag = `never-${++counter}`;
    const run = await push({ imagePath: image.path, repository: 'team/failures', tags: tag, ...inputs }, options);
    assertFailedWith(run, pattern);
    assert.equal(await tagExists('team/failures', tag), false, `tag ${tag} was created`);
    return run;
  }

  test('imagePath that does not exist', async () => {
    await failingPush(/^Input 'imagePath': .*does-not-exist does not exist; point it at an OCI image layout folder/, { imagePath: join(work, 'does-not-exist') });
  });

  test('imagePath that is not an image', async () => {
    const text = join(work, 'notes.txt');
    await writeFile(text, 'just some notes, not an image\n'.repeat(40));
    await failingPush(/imagePath .*notes\.txt is not a valid tar archive/, { imagePath: text });
    const folder = await mkdtemp(join(work, 'empty-'));
    await failingPush(/^Input 'imagePath': .* is not an OCI image layout/, { imagePath: folder });
  });

  test('a malformed docker save manifest.json: one line naming imagePath, the file and the field', async () => {
    const dir = await mkdtemp(join(work, 'malformed-save-'));
    await writeFile(join(dir, 'config.json'), JSON.stringify({ rootfs: { type: 'layers', diff_ids: [] } }));
    await writeFile(join(dir, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: null, Layers: 'layer.tar' }]));
    const archive = join(work, 'malformed-save.tar');
    await archiveFolder(dir, archive);
    const run = await failingPush(/^imagePath .*malformed-save\.tar: manifest\.json \[0\]\.Layers must be a list, not string "layer\.tar"; the image is corrupt/, { imagePath: archive });
    assert.equal(run.errors.length, 1, run.errors.join(' | '));
  });

  test('a corrupt (truncated) tar', async () => {
    const archive = join(work, 'truncated.tar');
    await archiveFolder(image.path, archive);
    const file = await open(archive, 'r+');
    await file.truncate((await file.stat()).size - 20_000);
    await file.close();
    await failingPush(/truncated/, { imagePath: archive });
  });

  test('a blob whose bytes do not match its digest', async () => {
    const corrupt = await freshLayout(2);
    const layer = corrupt.blobDigests.find((digest) => digest !== corrupt.blobDigests.at(-1))!;
    const file = await open(join(corrupt.path, 'blobs', 'sha256', layer.slice(7)), 'r+');
    await file.write(Buffer.from([0x42]), 0, 1, 100);
    await file.close();
    await failingPush(/does not match its digest.*corrupt/, { imagePath: corrupt.path });
  });

  test('invalid repository and tag', async () => {
    await failingPush(/^Input 'repository': 'Team\/App' is not a valid repository name/, { repository: 'Team/App' });
    const run = await push({ imagePath: image.path, repository: 'team/failures', tags: 'ok\n-bad' });
    assertFailedWith(run, /^Input 'tags': '-bad' is not a valid tag/);
    assert.equal(await tagExists('team/failures', 'ok'), false);
  });

  test('an unreachable registry', async () => {
    await failingPush(/Cannot reach 127\.0\.0\.1:1 \(ECONNREFUSED\)/, { registry: '127.0.0.1:1' });
  });

  test('a registry certificate from an untrusted CA', async () => {
    await failingPush(/TLS: the certificate of .* is not trusted .*add that CA/, {}, { env: { NODE_EXTRA_CA_CERTS: '' } });
  });

  test('a wrong client secret', async () => {
    await failingPush(/Entra ID refused a token for client .*AADSTS7000215/, {}, { connections: { arm: secretConnection(env, 'push', 'not-the-secret') } });
  });

  test('an identity that may pull but not push', async () => {
    await failingPush(/refused starting an upload to team\/failures \(insufficient_scope\).*AcrPush/, {}, { connections: { arm: secretConnection(env, 'pull') } });
  });

  test('retries exhausted', async () => {
    const fresh = await freshLayout(1);
    const faults = Array.from({ length: 5 }, () => env.proxy!.inject({ method: 'POST', pathPattern: /\/blobs\/uploads\/$/, kind: 'respond', status: 503 }));
    await failingPush(/Gave up on the registry .* after 5 attempts in [\d.]+ s: .*HTTP 503/, { imagePath: fresh.path, concurrency: '1' });
    assert.ok(faults.every((fault) => fault.fired));
  });
});

describe('tags move all or none', () => {
  const denied = (tag: string) =>
    env.proxy!.inject({
      method: 'PUT',
      pathPattern: new RegExp(`/manifests/${tag}$`),
      kind: 'respond',
      status: 403,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ errors: [{ code: 'DENIED', message: `tag ${tag} is locked` }] }),
    });

  test('a refused second tag leaves the first where it was', async () => {
    const first = await freshLayout(1);
    assertSucceeded(await push({ imagePath: first.path, repository: 'team/tags', tags: 'stable\nlatest' }));
    const second = await freshLayout(1);
    const refused = denied('latest');
    const run = await push({ imagePath: second.path, repository: 'team/tags', tags: 'stable\nlatest' });
    assertFailedWith(run, new RegExp(`denied storing manifest latest .*DENIED: tag latest is locked.*Tags already moved: stable put back on ${first.digest}`));
    assert.ok(refused.fired);
    assert.ok(run.warnings.some((warning) => warning.includes(`Put tag stable back on ${first.digest}`)), run.warnings.join(' | '));
    assert.equal(await servedDigest('team/tags', 'stable'), first.digest);
    assert.equal(await servedDigest('team/tags', 'latest'), first.digest);
  });

  test('tags that exist move before new ones, so a refused one leaves no new tag behind', async () => {
    const first = await freshLayout(1);
    assertSucceeded(await push({ imagePath: first.path, repository: 'team/tags-order', tags: 'locked' }));
    const refused = denied('locked');
    const run = await push({ imagePath: (await freshLayout(1)).path, repository: 'team/tags-order', tags: 'brand-new\nlocked' });
    assertFailedWith(run, /denied storing manifest locked/);
    assert.ok(refused.fired);
    assert.equal(await tagExists('team/tags-order', 'brand-new'), false);
    assert.equal(await servedDigest('team/tags-order', 'locked'), first.digest);
  });

  test('a new tag the registry cannot remove again is named in the error, with what to do', async () => {
    const image = await freshLayout(1);
    denied('second-new');
    const run = await push({ imagePath: image.path, repository: 'team/tags-new', tags: 'first-new\nsecond-new' });
    // Distribution refuses to delete tags (and a push identity may not delete): the error says what is left.
    assertFailedWith(run, new RegExp(`Tags already moved: first-new did not exist before and could not be removed, so it points at ${image.digest}: remove it by hand`));
    assert.ok(run.warnings.some((warning) => /^Tag first-new did not exist before/.test(warning)));
  });
});

describe('tokens and budgets', () => {
  test('tokens are minted once per scope, however many requests start together', async () => {
    const path = join(work, 'many-blobs');
    await writeOciLayout(path, { layers: makeLayers(10, 16 * 1024, 91) });
    const tokenRequestsBefore = env.tokenServer.requests.length;
    const entraBefore = env.entra.tokenRequests.length;
    assertSucceeded(await push({ imagePath: path, repository: 'team/tokens', concurrency: '8', tags: 'a\nb' }));
    const tokenRequests = env.tokenServer.requests.slice(tokenRequestsBefore);
    assert.deepEqual(tokenRequests.map((request) => `${request.path} ${request.scopes.join(' ')}`).sort(), ['/oauth2/exchange ', '/oauth2/token repository:team/tokens:pull,push']);
    assert.equal(env.entra.tokenRequests.length - entraBefore, 1);
  });

  test('a connection reset every 60 MB still completes a 300 MiB push: each blob goes on where the registry stands', async () => {
    const path = join(work, 'large');
    const image = await writeLargeLayout(path, 300 * 1024 * 1024);
    const resets = env.proxy!.resetEvery(60_000_000);
    let run: TaskRun;
    try {
      run = await push({ imagePath: path, repository: 'team/large' });
    } finally {
      resets.stop();
      await rm(path, { recursive: true, force: true });
    }
    assertSucceeded(run);
    assert.ok(resets.resets >= 5, `${resets.resets} resets`);
    assert.equal(run.outputs.digest, image.digest);
    assert.equal(await servedDigest('team/large', '1.0.0'), image.digest);
    // skopeo checks the 300 MiB blob the registry serves against its digest.
    const pulled = await mkdtemp(join(work, 'pulled-large-'));
    await skopeo(['copy', ...registryTrustArgs.skopeoSource(reader), `docker://${env.registry.host}/team/large:1.0.0`, `dir:${pulled}`]);
    await rm(pulled, { recursive: true, force: true });
    assert.ok(run.warnings.filter((warning) => /retrying in/.test(warning)).length >= resets.resets);
  });
});

describe('a flaky path still delivers identical content', () => {
  /** Pushes through the armed faults and checks each fired, the content arrived whole, and the expired token was re-minted. */
  async function pushThroughFaults(imagePath: string, repository: string, faults: InjectedFault[], expectedDigest?: string): Promise<TaskRun> {
    const tokenRequestsBefore = env.tokenServer.requests.filter((request) => request.path === '/oauth2/token').length;
    const run = await push({ imagePath, repository });
    assertSucceeded(run);
    assert.deepEqual(
      faults.map((fault) => fault.fired),
      faults.map(() => true),
    );
    if (expectedDigest) assert.equal(run.outputs.digest, expectedDigest);
    assert.equal(await servedDigest(repository, '1.0.0'), run.outputs.digest);
    await pullAll(repository, '1.0.0');
    const tokenRequests = env.tokenServer.requests.filter((request) => request.path === '/oauth2/token').length - tokenRequestsBefore;
    assert.ok(tokenRequests >= 2, 'the expired token was minted again');
    assert.ok(run.warnings.some((warning) => /retrying in/.test(warning)));
    return run;
  }

  test('layout blobs: reset mid-upload, 500 on a manifest, 429 with Retry-After, token expiring mid-push', async () => {
    const path = join(work, 'flaky');
    const image = await writeOciLayout(path, { layers: makeLayers(3, 512 * 1024, 77) });
    // Blobs this small go up as POST then PUT with the body.
    const upload = /\/blobs\/uploads\/[^?]+\?/;
    const faults = [
      env.proxy!.inject({ method: 'PUT', pathPattern: upload, kind: 'reset', afterRequestBodyBytes: 64 * 1024 }),
      env.proxy!.inject({ method: 'PUT', pathPattern: /\/manifests\//, kind: 'respond', status: 500 }),
      env.proxy!.inject({ method: 'HEAD', kind: 'respond', status: 429, headers: { 'Retry-After': '1' } }),
      env.proxy!.inject({ method: 'PUT', pathPattern: upload, nth: 2, kind: 'expiredToken' }),
    ];
    await pushThroughFaults(path, 'team/flaky', faults, image.digest);
  });

  test('a registry that refuses a large request body (413) gets smaller chunks', async () => {
    // One layer of about 24 MiB: a single PUT until the registry refuses it, then two halves.
    const path = join(work, 'large-bodies');
    const image = await writeOciLayout(path, { layers: [randomBytes(24 * 1024 * 1024)], gzipLevel: 0 });
    const layer = image.blobDigests[0].slice('sha256:'.length);
    const refused = env.proxy!.inject({ method: 'PUT', pathPattern: new RegExp(`/blobs/uploads/.*digest=sha256%3A${layer}`), kind: 'respond', status: 413 });
    const before = env.proxy!.requests.length;
    const run = await push({ imagePath: path, repository: 'team/small-bodies' });
    assertSucceeded(run);
    assert.ok(refused.fired);
    assert.ok(run.warnings.some((warning) => /HTTP 413\); sending 12 MiB at a time/.test(warning)), run.warnings.join(' | '));
    const patches = env.proxy!.requests.slice(before).filter((request) => request.method === 'PATCH');
    assert.ok(patches.length >= 1 && patches.every((request) => request.bytesIn <= 12 * 1024 * 1024 + 1024));
    assert.equal(await servedDigest('team/small-bodies', '1.0.0'), image.digest);
  });

  test('docker save layers compressed on the fly: reset and expired token in the middle of a PATCH', async () => {
    const path = join(work, 'flaky-save.tar');
    await writeDockerSave(path, { layers: makeLayers(2, 6 * 1024 * 1024, 78), format: 'oci', workDir: await mkdtemp(join(work, 'save-')) });
    const faults = [
      env.proxy!.inject({ method: 'PATCH', kind: 'reset', afterRequestBodyBytes: 256 * 1024 }),
      env.proxy!.inject({ method: 'PATCH', nth: 2, kind: 'expiredToken' }),
    ];
    const run = await pushThroughFaults(path, 'team/flaky-save', faults);
    // Distribution keeps the part of a body that arrived and then refuses the upload's old state:
    // the task asks, learns the upload is gone, and starts that layer again.
    assert.ok(run.warnings.some((warning) => /dropped the interrupted upload to team\/flaky-save \(HTTP 404 BLOB_UPLOAD_INVALID/.test(warning)), run.warnings.join(' | '));
  });
});
