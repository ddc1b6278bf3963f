// The fault proxy passes registry traffic through untouched (uploads included) and, when armed,
// really resets the connection mid-body, answers 429/500, or replays the registry's 401 challenge.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { registryTrustArgs, startAcrEnvironment, type AcrEnvironment } from '../env/environment.js';
import type { FaultProxy } from '../env/faults.js';
import { request } from '../env/http.js';
import { OCI_MANIFEST_MEDIA_TYPE, writeTinyImageLayout, type TinyImage } from '../env/oci-layout.js';
import { runTool } from '../env/processes.js';

const REPOSITORY = 'faults/app';

void describe('fault proxy', () => {
  let env: AcrEnvironment;
  let proxy: FaultProxy;
  let workDir: string;
  let image: TinyImage;
  let bearer: string;

  before(async () => {
    env = await startAcrEnvironment({ withFaultProxy: true });
    assert.ok(env.proxy);
    proxy = env.proxy;
    workDir = await mkdtemp(path.join(os.tmpdir(), 'faults-selftest-'));
    image = await writeTinyImageLayout(path.join(workDir, 'image'), { tag: 'v1', content: 'fault proxy\n' });
    env.tokenServer.addUser('fault-admin', 'fault-admin-password', 'admin');
    const token = await request(`${env.tokenServer.realm}?service=${encodeURIComponent(env.registry.service)}&scope=${encodeURIComponent(`repository:${REPOSITORY}:pull,push`)}`, {
      ca: env.ca.caCertPem,
      headers: { authorization: `Basic ${Buffer.from('fault-admin:fault-admin-password').toString('base64')}` },
    });
    bearer = (JSON.parse(token.body) as { access_token: string }).access_token;
  });

  after(async () => {
    await env?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  /** A request to the registry through the proxy, authorized for REPOSITORY. */
  const viaProxy = (pathAndQuery: string, options: { method?: string; body?: string; headers?: Record<string, string> } = {}) =>
    request(new URL(pathAndQuery, proxy.url).toString(), { ...options, ca: env.ca.caCertPem, headers: { authorization: `Bearer ${bearer}`, ...options.headers } });

  void it('carries a whole skopeo push, uploads included, with Locations that stay on the proxy', async () => {
    assert.equal(env.registryHost, proxy.host);
    const trust = await env.createClientTrust({ role: 'push' });
    await runTool('skopeo', ['copy', ...registryTrustArgs.skopeoDestination(trust), `oci:${image.layoutDir}:v1`, `docker://${trust.host}/${REPOSITORY}:v1`]);
    const uploads = proxy.requests.filter((entry) => /\/blobs\/uploads\/.+/.test(entry.path) && entry.method === 'PUT');
    assert.ok(uploads.length >= 2, 'config and layer uploads finished through the proxy');
    assert.ok(uploads.every((entry) => entry.status === 201));
    const manifestPut = proxy.requests.find((entry) => entry.method === 'PUT' && entry.path === `/v2/${REPOSITORY}/manifests/v1`);
    assert.equal(manifestPut?.bytesIn, image.manifestBytes.length);
  });

  void it('resets the connection after the given number of upload bytes, once', async () => {
    const started = await viaProxy(`/v2/${REPOSITORY}/blobs/uploads/`, { method: 'POST' });
    assert.equal(started.status, 202);
    const location = String(started.headers.location);
    assert.ok(location.startsWith(proxy.url), `upload Location ${location} points at the proxy`);
    const fault = proxy.inject({ method: 'PATCH', pathPattern: /\/blobs\/uploads\//, kind: 'reset', afterRequestBodyBytes: 1024 });
    const chunk = 'x'.repeat(64 * 1024);

    await assert.rejects(viaProxy(location, { method: 'PATCH', body: chunk, headers: { 'content-type': 'application/octet-stream' } }), /ECONNRESET|socket hang up/);
    assert.equal(fault.fired, true);
    const reset = proxy.requests.filter((entry) => entry.fault === 'reset').at(-1);
    assert.equal(reset?.status, 0);
    assert.ok((reset?.bytesIn ?? 0) >= 1024);

    // Consumed: the next upload goes through.
    const retried = await viaProxy(`/v2/${REPOSITORY}/blobs/uploads/`, { method: 'POST' });
    const patched = await viaProxy(String(retried.headers.location), { method: 'PATCH', body: chunk, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(patched.status, 202);
    assert.equal(patched.headers.range, `0-${chunk.length - 1}`);
  });

  void it('answers 429 with Retry-After once, then lets the request through', async () => {
    const fault = proxy.inject({
      method: 'GET', pathPattern: /\/tags\/list$/, kind: 'respond', status: 429,
      headers: { 'Retry-After': '1', 'Content-Type': 'application/json' },
      body: JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'too many requests' }] }),
    });
    const limited = await viaProxy(`/v2/${REPOSITORY}/tags/list`);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers['retry-after'], '1');
    assert.equal(fault.fired, true);
    const next = await viaProxy(`/v2/${REPOSITORY}/tags/list`);
    assert.equal(next.status, 200);
    assert.deepEqual((JSON.parse(next.body) as { tags: string[] }).tags, ['v1']);
  });

  void it('acts on the nth matching request only', async () => {
    proxy.inject({ method: 'HEAD', pathPattern: /\/manifests\/v1$/, nth: 2, kind: 'respond', status: 500 });
    const statuses = [];
    for (let i = 0; i < 3; i += 1) statuses.push((await viaProxy(`/v2/${REPOSITORY}/manifests/v1`, { method: 'HEAD', headers: { accept: OCI_MANIFEST_MEDIA_TYPE } })).status);
    assert.deepEqual(statuses, [200, 500, 200]);
  });

  void it('answers the registry\'s own 401 challenge as if the token had expired', async () => {
    const fault = proxy.inject({ method: 'PUT', pathPattern: /\/manifests\//, kind: 'expiredToken' });
    const put = () => viaProxy(`/v2/${REPOSITORY}/manifests/v2`, {
      method: 'PUT', body: image.manifestBytes.toString('utf8'), headers: { 'content-type': OCI_MANIFEST_MEDIA_TYPE },
    });
    const challenged = await put();
    assert.equal(challenged.status, 401);
    assert.equal(fault.fired, true);
    // The registry's own challenge; the realm names the token server itself, not the proxy, so
    // clients re-mint there and come back. (Distribution orders the actions at random.)
    const challenge = String(challenged.headers['www-authenticate']);
    assert.match(challenge, /^Bearer /);
    const parameters = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map(([, name, value]) => [name, value]));
    assert.equal(parameters.realm, env.tokenServer.realm);
    assert.equal(parameters.service, env.registry.service);
    const [type, name, actions] = parameters.scope.split(':');
    assert.deepEqual([type, name, actions.split(',').sort()], ['repository', REPOSITORY, ['pull', 'push']]);
    const accepted = await put();
    assert.equal(accepted.status, 201);
    assert.equal(accepted.headers['docker-content-digest'], image.manifest.digest);
  });
});
