// One retry budget per request, against the real registry and the Azure stand-ins: an endpoint that
// takes connections and never answers, a registry that resets every connection, and a token server
// that is down each fail quickly, in one line that blames the right endpoint. The push core runs
// in-process here so a test can shorten the idle timeout; the environment is this file's own,
// since the last test stops its token server.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pushContainerImage } from '../../src/image/pushImage.js';
import type { Logger } from '../../src/log.js';
import type { TransportOptions } from '../../src/http/transport.js';
import { startAcrEnvironment, type AcrEnvironment } from '../env/environment.js';
import { makeLayers, writeOciLayout } from '../fixtures/images.js';

let env: AcrEnvironment;
let work: string;
let image: string;

before(async () => {
  env = await startAcrEnvironment({ withFaultProxy: true });
  work = await mkdtemp(join(tmpdir(), 'retry-budget-'));
  image = join(work, 'image');
  await writeOciLayout(image, { layers: makeLayers(2, 64 * 1024, 41) });
});

after(async () => {
  await env?.stop();
  await rm(work, { recursive: true, force: true });
});

/** Pushes the test image in-process as a fresh service principal; resolves with the error, the warnings and the time taken. */
async function failingPush(repository: string, transport: TransportOptions = {}): Promise<{ error: Error; warnings: string[]; seconds: number }> {
  const principal = env.addServicePrincipal('push');
  const warnings: string[] = [];
  const logger: Logger = { info() {}, debug() {}, warn: (line) => warnings.push(line) };
  const started = Date.now();
  try {
    await pushContainerImage({
      host: env.registryHost,
      auth: { kind: 'azure', identity: { kind: 'clientSecret', authorityUrl: env.entra.authorityUrl, tenantId: env.entra.tenantId, clientId: principal.clientId, clientSecret: principal.clientSecret } },
      transport: { caCertificates: [env.ca.caCertPem], ...transport },
      repository,
      imagePath: image,
      tags: ['1'],
      tempDir: work,
      logger,
      secrets: { register() {} },
    });
  } catch (error) {
    return { error: error as Error, warnings, seconds: (Date.now() - started) / 1000 };
  }
  throw new Error('the push succeeded');
}

test('an endpoint that takes connections and never answers fails within three idle timeouts, naming host and timeout', async () => {
  // With the default idle timeout of 60 s, the same bound is the three minutes a push may hang at most.
  const stall = env.proxy!.inject({ kind: 'stall', times: Infinity });
  try {
    const { error, warnings, seconds } = await failingPush('budget/stalled', { idleTimeoutMs: 2000 });
    assert.ok(seconds < 6, `took ${seconds} s`);
    assert.ok(seconds >= 4, `gave up after ${seconds} s, before a second stall`);
    const host = env.registryHost.replace(/\./g, '\\.');
    assert.match(error.message, new RegExp(`^Gave up on the registry ${host} \\(GET /v2/\\) after 2 attempts in [\\d.]+ s: ${host} went silent for 2 s \\(idle timeout\\)`));
    assert.equal(warnings.length, 1, warnings.join(' | '));
    assert.match(warnings[0], /went silent for 2 s \(idle timeout\); retrying in/);
    assert.equal(stall.count, 2);
  } finally {
    stall.disarm();
  }
});

test('a registry that resets every connection gets at most as many connections as the retry budget', async () => {
  const reset = env.proxy!.inject({ kind: 'reset', times: Infinity });
  const connectionsBefore = env.proxy!.connections;
  try {
    const { error, warnings } = await failingPush('budget/reset');
    const connections = env.proxy!.connections - connectionsBefore;
    // The budget is 5 tries of one request; a retry nested in another would multiply it.
    assert.ok(connections >= 1 && connections <= 5, `${connections} connections`);
    assert.equal(reset.count, 5);
    assert.match(error.message, /^Gave up on the registry 127\.0\.0\.1:\d+ \(GET \/v2\/\) after 5 attempts in [\d.]+ s: Cannot reach 127\.0\.0\.1:\d+ \(ECONNRESET\)/);
    assert.equal(warnings.length, 4);
  } finally {
    reset.disarm();
  }
});

test('a token server that is down fails within 60 s, naming the token endpoint rather than the registry', async () => {
  await env.tokenServer.stop();
  const { error, seconds } = await failingPush('budget/token-server');
  assert.ok(seconds < 60, `took ${seconds} s`);
  const tokenHost = new URL(env.tokenServer.url).host.replace(/\./g, '\\.');
  assert.match(error.message, new RegExp(`^Gave up on the ACR token server ${tokenHost} \\(POST /oauth2/exchange\\) after 5 attempts in [\\d.]+ s: Cannot reach ${tokenHost} \\(ECONNREFUSED\\)`));
});
