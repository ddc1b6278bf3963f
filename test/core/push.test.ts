// The push core in-process against the real registry: progress lines during a long upload, and an
// index whose platforms share a layer sends that layer once.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { openImage } from '../../src/image/open.js';
import type { Logger } from '../../src/log.js';
import { pushImage } from '../../src/oci/push.js';
import { openRegistrySession } from '../../src/acr/session.js';
import { startAcrEnvironment, type AcrEnvironment } from '../env/environment.js';
import { makeLayers, writeOciLayout } from '../fixtures/images.js';

let env: AcrEnvironment;
let work: string;

before(async () => {
  env = await startAcrEnvironment({ withFaultProxy: true });
  work = await mkdtemp(join(tmpdir(), 'push-core-'));
});

after(async () => {
  await env?.stop();
  await rm(work, { recursive: true, force: true });
});

async function pushLayout(path: string, repository: string, logger: Logger, progressIntervalMs?: number) {
  const principal = env.addServicePrincipal('push');
  const session = openRegistrySession({
    host: env.registryHost,
    auth: { kind: 'azure', identity: { kind: 'clientSecret', authorityUrl: env.entra.authorityUrl, tenantId: env.entra.tenantId, clientId: principal.clientId, clientSecret: principal.clientSecret } },
    transport: { caCertificates: [env.ca.caCertPem] },
    logger,
    secrets: { register() {} },
  });
  const image = await openImage(path, { tempDir: work });
  try {
    return await pushImage({ client: session.client, repository, root: image.root, tags: ['1'], logger, progressIntervalMs });
  } finally {
    await Promise.all([image.close(), session.close()]);
  }
}

test('a long upload reports progress while it runs', async () => {
  const path = join(work, 'big');
  await writeOciLayout(path, { layers: makeLayers(4, 48 * 1024 * 1024, 31) });
  const lines: string[] = [];
  const logger: Logger = { info: (line) => lines.push(line), warn: (line) => lines.push(line), debug() {} };
  const result = await pushLayout(path, 'core/progress', logger, 20);
  const progress = lines.filter((line) => /^Uploaded [\d.]+ of at least [\d.]+ MiB so far \([\d.]+ MiB\/s\)$/.test(line));
  assert.ok(progress.length >= 2, `progress lines: ${lines.join(' | ')}`);
  assert.equal(result.blobsUploaded, 5);
  assert.ok(result.bytesUploaded > 96 * 1024 * 1024);
});

test('a layer shared by two platforms goes up once', async () => {
  const path = join(work, 'shared');
  await writeOciLayout(path, { layers: makeLayers(2, 256 * 1024, 32), platforms: ['amd64', 'arm64'], nested: true });
  const before = env.proxy!.requests.length;
  const result = await pushLayout(path, 'core/shared', { info() {}, warn() {}, debug() {} });
  const uploads = env.proxy!.requests.slice(before).filter((request) => request.method === 'POST' && request.path.includes('/blobs/uploads/'));
  // 2 shared layers + 2 platform layers + 2 configs, each once.
  assert.equal(uploads.length, 6);
  assert.equal(result.blobsUploaded, 6);
});
