// The real registry behind the ACR token server: it challenges, it accepts only the token server's
// tokens, it enforces the roles, and the verifying clients (skopeo, oras, helm) work against it.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { registryTrustArgs, startAcrEnvironment, testToolPath, type AcrEnvironment } from '../env/environment.js';
import { request } from '../env/http.js';
import { createJwtIssuer, decodeJwt } from '../env/jwt.js';
import { writeTinyImageLayout } from '../env/oci-layout.js';
import { ToolError, runTool } from '../env/processes.js';

void describe('registry environment', () => {
  let env: AcrEnvironment;
  let workDir: string;

  before(async () => {
    const startedAt = Date.now();
    env = await startAcrEnvironment();
    // Printed, not asserted: a busy shared machine must not fail the suite, but a slow start should show.
    console.log(`registry environment started in ${Date.now() - startedAt} ms`);
    workDir = await mkdtemp(path.join(os.tmpdir(), 'registry-selftest-'));
  });

  after(async () => {
    await env?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  void it('answers an anonymous request with the 401 challenge naming the token server realm', async () => {
    const response = await request(`${env.registry.url}/v2/demo/hello/tags/list`, { ca: env.ca.caCertPem });
    assert.equal(response.status, 401);
    assert.equal(
      response.headers['www-authenticate'],
      `Bearer realm="${env.tokenServer.url}/oauth2/token",service="${env.registry.service}",scope="repository:demo/hello:pull"`,
    );
  });

  void it('refuses a token the token server did not sign', async () => {
    const forged = env.entra.addSecretClient('forger', 'irrelevant');
    const { token } = await forgeRegistryToken(env, forged.objectId);
    const response = await request(`${env.registry.url}/v2/`, { ca: env.ca.caCertPem, headers: { authorization: `Bearer ${token}` } });
    assert.equal(response.status, 401);
    // Refused for the token itself, not merely for a missing one.
    assert.match(String(response.headers['www-authenticate']), /error="invalid_token"/);
  });

  void it('lets skopeo push an image with token-server credentials and reads back the same manifest', async () => {
    const trust = await env.createClientTrust({ role: 'push' });
    assert.equal((await stat(trust.authFile)).mode & 0o777, 0o600);
    const image = await writeTinyImageLayout(path.join(workDir, 'image'), { tag: 'v1' });
    const reference = `docker://${trust.host}/demo/hello:v1`;

    await runTool('skopeo', ['copy', ...registryTrustArgs.skopeoDestination(trust), `oci:${image.layoutDir}:v1`, reference]);

    const raw = await runTool('skopeo', ['inspect', '--raw', ...registryTrustArgs.skopeo(trust), reference]);
    assert.equal(raw.stdout, image.manifestBytes.toString('utf8'));
    const tags = await runTool('skopeo', ['list-tags', ...registryTrustArgs.skopeo(trust), `docker://${trust.host}/demo/hello`]);
    assert.deepEqual((JSON.parse(tags.stdout) as { Tags: string[] }).Tags, ['v1']);
    // The registry really stored it: the layer blob is on disk under its digest.
    const layerHex = image.layer.digest.slice('sha256:'.length);
    const blob = await readFile(path.join(env.registry.storageDir, 'docker/registry/v2/blobs/sha256', layerHex.slice(0, 2), layerHex, 'data'));
    assert.equal(blob.length, image.layer.size);
    // The push went through the documented flow: exchange, then tokens with push scope for the principal.
    const tokenRequests = env.tokenServer.requests.filter((entry) => entry.subject === trust.objectId);
    assert.ok(tokenRequests.some((entry) => entry.path === '/oauth2/exchange' && entry.status === 200));
    assert.ok(tokenRequests.some((entry) => entry.scopes.includes('repository:demo/hello:pull,push') && entry.status === 200));
  });

  void it('denies push to a pull-only principal but lets it pull', async () => {
    const pusher = await env.createClientTrust({ role: 'push' });
    const image = await writeTinyImageLayout(path.join(workDir, 'pull-only'), { tag: 'v1', content: 'pull-only\n' });
    await runTool('skopeo', ['copy', ...registryTrustArgs.skopeoDestination(pusher), `oci:${image.layoutDir}:v1`, `docker://${pusher.host}/demo/readonly:v1`]);

    const reader = await env.createClientTrust({ role: 'pull' });
    const denied = await runTool('skopeo', ['copy', ...registryTrustArgs.skopeoDestination(reader), `oci:${image.layoutDir}:v1`, `docker://${reader.host}/demo/readonly:v2`])
      .then(() => undefined, (error: unknown) => error);
    assert.ok(denied instanceof ToolError, 'push with a pull-only principal must fail');
    assert.match(denied.stderr, /unauthorized|denied|authentication required/i);
    const issued = env.tokenServer.issuedTokens.filter((entry) => entry.claims.sub === reader.objectId && Array.isArray(entry.claims.access));
    for (const { token } of issued) {
      for (const access of decodeJwt(token).claims.access as { actions: string[] }[]) assert.deepEqual(access.actions, ['pull']);
    }

    const raw = await runTool('skopeo', ['inspect', '--raw', ...registryTrustArgs.skopeo(reader), `docker://${reader.host}/demo/readonly:v1`]);
    assert.equal(raw.stdout, image.manifestBytes.toString('utf8'));
  });

  void it('keeps a repository-scoped user to its repositories', async () => {
    env.tokenServer.addUser('ci-token', 'scoped-password', 'push', { repositories: ['team/allowed'] });
    const image = await writeTinyImageLayout(path.join(workDir, 'scoped'), { tag: 'v1', content: 'scoped\n' });
    const trust = await env.clientTrustFor({ username: 'ci-token', password: 'scoped-password' });
    await runTool('skopeo', ['copy', ...registryTrustArgs.skopeoDestination(trust), `oci:${image.layoutDir}:v1`, `docker://${trust.host}/team/allowed:v1`]);
    await assert.rejects(
      runTool('skopeo', ['copy', ...registryTrustArgs.skopeoDestination(trust), `oci:${image.layoutDir}:v1`, `docker://${trust.host}/team/other:v1`]),
      ToolError,
    );
  });

  void it('lets oras and helm verify what was pushed with their trust arguments', async () => {
    const trust = await env.createClientTrust({ role: 'push' });
    const chartDir = path.join(workDir, 'charts');
    await mkdir(chartDir);
    await runTool(testToolPath('helm'), ['create', path.join(chartDir, 'selftest')], { env: trust.toolEnv });
    await runTool(testToolPath('helm'), ['package', path.join(chartDir, 'selftest'), '--version', '1.2.3', '--destination', chartDir], { env: trust.toolEnv });
    await runTool(testToolPath('helm'), ['push', path.join(chartDir, 'selftest-1.2.3.tgz'), `oci://${trust.host}/helm`, ...registryTrustArgs.helm(trust)], { env: trust.toolEnv });

    const manifest = await runTool(testToolPath('oras'), ['manifest', 'fetch', ...registryTrustArgs.oras(trust), `${trust.host}/helm/selftest:1.2.3`]);
    const parsed = JSON.parse(manifest.stdout) as { config: { mediaType: string }; layers: { mediaType: string }[] };
    assert.equal(parsed.config.mediaType, 'application/vnd.cncf.helm.config.v1+json');
    assert.equal(parsed.layers[0].mediaType, 'application/vnd.cncf.helm.chart.content.v1.tar+gzip');

    const shown = await runTool(testToolPath('helm'), ['show', 'chart', `oci://${trust.host}/helm/selftest`, '--version', '1.2.3', ...registryTrustArgs.helm(trust)], { env: trust.toolEnv });
    assert.match(shown.stdout, /^name: selftest$/m);
    assert.match(shown.stdout, /^version: 1\.2\.3$/m);
  });

  void it('lists every secret and token it handed out, for leak scans', async () => {
    const trust = await env.createClientTrust({ role: 'pull' });
    const { auths } = JSON.parse(await readFile(trust.authFile, 'utf8')) as { auths: Record<string, { auth: string }> };
    const refreshToken = Buffer.from(auths[trust.host].auth, 'base64').toString('utf8').split(':')[1];
    const secrets = env.secrets();
    for (const secret of [trust.clientSecret, refreshToken, env.devops.systemAccessToken, env.entra.issuedTokens.at(-1)?.token]) {
      assert.ok(secret && secrets.includes(secret));
    }
  });

  void it('refuses the clients when they do not trust the test CA', async () => {
    const trust = await env.createClientTrust({ role: 'pull' });
    const error = await runTool(testToolPath('oras'), ['repo', 'tags', '--registry-config', trust.authFile, `${trust.host}/demo/hello`]).then(() => undefined, (failure: unknown) => failure);
    assert.ok(error instanceof ToolError);
    assert.match(error.stderr, /certificate/i);
  });
});

/** A well-formed registry token signed by a key the registry does not trust. */
async function forgeRegistryToken(env: AcrEnvironment, subject: string): Promise<{ token: string }> {
  const impostor = await createJwtIssuer(env.tokenServer.issuer);
  return { token: impostor.sign({ sub: subject, aud: env.registry.service, access: [{ type: 'repository', name: 'demo/hello', actions: ['pull', 'push'] }] }) };
}
