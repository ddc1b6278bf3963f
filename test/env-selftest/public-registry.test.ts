// The "public" source registry of the import tests: its own CA, anonymous pull of public
// repositories, users for private ones and for pushing, like Docker Hub or ghcr.io.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { registryTrustArgs } from '../env/environment.js';
import { request } from '../env/http.js';
import { writeTinyImageLayout } from '../env/oci-layout.js';
import { ToolError, runTool } from '../env/processes.js';
import { startPublicRegistry, type PublicRegistry } from '../env/publicRegistry.js';

void describe('public source registry', () => {
  let source: PublicRegistry;
  let workDir: string;

  before(async () => {
    source = await startPublicRegistry();
    workDir = await mkdtemp(path.join(os.tmpdir(), 'public-registry-selftest-'));
  });

  after(async () => {
    await source?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  void it('serves TLS from its own CA and challenges for a token', async () => {
    const response = await request(`${source.registry.url}/v2/`, { ca: source.ca.caCertPem });
    assert.equal(response.status, 401);
    assert.match(String(response.headers['www-authenticate']), /^Bearer realm="https:\/\/127\.0\.0\.1:\d+\/token",service="127\.0\.0\.1:\d+"/);
  });

  void it('lets a user push, anyone pull a public repository, and only users pull a private one', async () => {
    const user = source.addUser();
    const trust = await source.clientTrust(user);
    const image = await writeTinyImageLayout(path.join(workDir, 'image'), { tag: 'v1' });
    for (const repository of ['library/hello', 'team/secret']) {
      await runTool('skopeo', ['copy', ...registryTrustArgs.skopeoDestination(trust), `oci:${image.layoutDir}:v1`, `docker://${source.host}/${repository}:v1`]);
    }
    source.privateRepositories.add('team/secret');

    const anonymous = ['--cert-dir', trust.certDir, '--no-creds'];
    const raw = await runTool('skopeo', ['inspect', '--raw', ...anonymous, `docker://${source.host}/library/hello:v1`]);
    assert.equal(raw.stdout, image.manifestBytes.toString('utf8'));
    const denied = await runTool('skopeo', ['inspect', '--raw', ...anonymous, `docker://${source.host}/team/secret:v1`]).then(() => undefined, (error: unknown) => error);
    assert.ok(denied instanceof ToolError, 'an anonymous pull of a private repository must fail');
    const allowed = await runTool('skopeo', ['inspect', '--raw', ...registryTrustArgs.skopeo(trust), `docker://${source.host}/team/secret:v1`]);
    assert.equal(allowed.stdout, image.manifestBytes.toString('utf8'));
    assert.ok(source.tokenRequests.some((entry) => entry.username === undefined && entry.granted.length === 0 && entry.scopes.includes('repository:team/secret:pull')));
  });

  void it('refuses a wrong password at the token server', async () => {
    const user = source.addUser();
    const trust = await source.clientTrust({ username: user.username, password: 'wrong' });
    const failed = await runTool('skopeo', ['inspect', '--raw', ...registryTrustArgs.skopeo(trust), `docker://${source.host}/library/hello:v1`]).then(() => undefined, (error: unknown) => error);
    assert.ok(failed instanceof ToolError);
    assert.match(failed.stderr, /unauthorized|incorrect username or password|401/i);
  });
});
