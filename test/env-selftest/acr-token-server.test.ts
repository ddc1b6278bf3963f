// The ACR token server stand-in follows ACR's AAD-OAuth flow and refuses what ACR refuses:
// Entra tokens for the wrong audience or tenant, expired ones, foreign refresh tokens, bad passwords.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { ACR_REFRESH_TOKEN_USERNAME, parseScope, startAcrTokenServer } from '../env/acr.js';
import { startAcrEnvironment, type AcrEnvironment, type ServicePrincipal } from '../env/environment.js';
import { formBody, request, type ClientResponse } from '../env/http.js';
import { decodeJwt, verifyJwt } from '../env/jwt.js';

void describe('ACR token server stand-in', () => {
  let env: AcrEnvironment;

  before(async () => {
    env = await startAcrEnvironment();
  });

  after(async () => {
    await env?.stop();
  });

  const post = (endpoint: string, fields: Record<string, string | string[]>) =>
    request(`${env.tokenServer.url}${endpoint}`, { method: 'POST', ca: env.ca.caCertPem, ...formBody(fields) });
  const errorMessage = (response: ClientResponse) => (JSON.parse(response.body) as { errors: { code: string; message: string }[] }).errors[0].message;

  async function entraToken(principal: ServicePrincipal, scope: string): Promise<string> {
    const response = await request(`${env.entra.url}/${env.entra.tenantId}/oauth2/v2.0/token`, {
      method: 'POST', ca: env.ca.caCertPem,
      ...formBody({ grant_type: 'client_credentials', client_id: principal.clientId, client_secret: principal.clientSecret, scope }),
    });
    return (JSON.parse(response.body) as { access_token: string }).access_token;
  }

  const exchange = (accessToken: string, tenant = env.entra.tenantId) =>
    post('/oauth2/exchange', { grant_type: 'access_token', service: env.registry.service, tenant, access_token: accessToken });

  void it('exchanges an ACR-audience Entra token and refuses an ARM-audience one unless the policy allows it', async () => {
    const principal = env.addServicePrincipal('pull');
    const acrAudience = await exchange(await entraToken(principal, 'https://containerregistry.azure.net/.default'));
    assert.equal(acrAudience.status, 200);
    assert.equal(decodeJwt((JSON.parse(acrAudience.body) as { refresh_token: string }).refresh_token).claims.sub, principal.objectId);

    const armToken = await entraToken(principal, 'https://management.azure.com/.default');
    const refused = await exchange(armToken);
    assert.equal(refused.status, 401);
    assert.match(errorMessage(refused), /audience https:\/\/management\.azure\.com is not accepted/);
    env.tokenServer.armAudienceAccepted = true;
    try {
      assert.equal((await exchange(armToken)).status, 200);
    } finally {
      env.tokenServer.armAudienceAccepted = false;
    }
  });

  void it('refuses an Entra token from the wrong tenant, an unknown issuer or past its expiry', async () => {
    const principal = env.addServicePrincipal('pull');
    const token = await entraToken(principal, 'https://containerregistry.azure.net/.default');
    const wrongTenant = await exchange(token, '11111111-2222-3333-4444-555555555555');
    assert.equal(wrongTenant.status, 401);
    assert.match(errorMessage(wrongTenant), /tenant/);

    // A registry in another tenant refuses the token by its tid, even when the request names no tenant.
    const otherTenantServer = await startAcrTokenServer({ ca: env.ca, entra: env.entra, tenantId: '66666666-7777-8888-9999-000000000000' });
    try {
      otherTenantServer.registerService(env.registry.service);
      const byTid = await request(`${otherTenantServer.url}/oauth2/exchange`, {
        method: 'POST', ca: env.ca.caCertPem, ...formBody({ grant_type: 'access_token', service: env.registry.service, access_token: token }),
      });
      assert.equal(byTid.status, 401);
      assert.match(errorMessage(byTid), /tenant/);
    } finally {
      await otherTenantServer.stop();
    }

    // A token whose claims were changed after Entra signed it.
    const [header, , signature] = token.split('.');
    const tampered = `${header}.${Buffer.from(JSON.stringify({ ...decodeJwt(token).claims, oid: 'someone-else' })).toString('base64url')}.${signature}`;
    assert.equal((await exchange(tampered)).status, 401);

    env.entra.accessTokenLifetimeSeconds = -5;
    try {
      const expired = await exchange(await entraToken(principal, 'https://containerregistry.azure.net/.default'));
      assert.equal(expired.status, 401);
      assert.match(errorMessage(expired), /expired/);
    } finally {
      env.entra.accessTokenLifetimeSeconds = 3600;
    }
  });

  void it('mints access tokens the registry can verify, trimmed to the role, for several scopes at once', async () => {
    const principal = env.addServicePrincipal('pull');
    const refreshToken = await env.acrRefreshToken(principal);
    const response = await post('/oauth2/token', {
      grant_type: 'refresh_token', service: env.registry.service, refresh_token: refreshToken,
      scope: ['repository:team/app:pull,push', 'repository:team/base:pull'],
    });
    assert.equal(response.status, 200);
    const { access_token: accessToken } = JSON.parse(response.body) as { access_token: string };
    const signingCert = new X509Certificate(await readFile(env.tokenServer.rootCertPath));
    const { header, claims } = verifyJwt(accessToken, signingCert.publicKey, { issuer: env.tokenServer.issuer, audience: env.registry.service });
    assert.deepEqual(header.x5c, [signingCert.raw.toString('base64')]);
    assert.equal(claims.sub, principal.objectId);
    assert.deepEqual(claims.access, [
      { type: 'repository', name: 'team/app', actions: ['pull'] },
      { type: 'repository', name: 'team/base', actions: ['pull'] },
    ]);
    assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), env.tokenServer.accessTokenLifetimeSeconds);
  });

  void it('gives a principal without a role a token with no access, as ACR does', async () => {
    // Known to Entra, never granted a role on the registry.
    const outsider = env.entra.addSecretClient('outsider', 'outsider-secret');
    const refreshToken = await env.acrRefreshToken({ clientId: 'outsider', clientSecret: 'outsider-secret', objectId: outsider.objectId });
    const response = await post('/oauth2/token', { grant_type: 'refresh_token', service: env.registry.service, refresh_token: refreshToken, scope: 'repository:team/app:pull' });
    assert.equal(response.status, 200);
    assert.deepEqual(decodeJwt((JSON.parse(response.body) as { access_token: string }).access_token).claims.access, []);
  });

  void it('refuses a refresh token minted for another service and unknown services', async () => {
    const principal = env.addServicePrincipal('push');
    const refreshToken = await env.acrRefreshToken(principal);
    env.tokenServer.registerService('other.example:443');
    const otherService = await post('/oauth2/token', { grant_type: 'refresh_token', service: 'other.example:443', refresh_token: refreshToken, scope: 'repository:x:pull' });
    assert.equal(otherService.status, 401);
    const unknownService = await post('/oauth2/token', { grant_type: 'refresh_token', service: 'unknown.example', refresh_token: refreshToken, scope: 'repository:x:pull' });
    assert.equal(unknownService.status, 400);
  });

  void it('accepts username/password by POST and by GET with Basic auth, and the 00000000 user with a refresh token', async () => {
    env.tokenServer.addUser('admin-user', 'admin-password', 'admin');
    const viaPost = await post('/oauth2/token', { grant_type: 'password', service: env.registry.service, username: 'admin-user', password: 'admin-password', scope: 'repository:team/app:pull,push,delete' });
    assert.equal(viaPost.status, 200);
    assert.deepEqual(decodeJwt((JSON.parse(viaPost.body) as { access_token: string }).access_token).claims.access, [{ type: 'repository', name: 'team/app', actions: ['pull', 'push', 'delete'] }]);

    const query = `service=${encodeURIComponent(env.registry.service)}&scope=${encodeURIComponent('repository:team/app:pull')}`;
    const basic = (username: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` });
    const viaGet = await request(`${env.tokenServer.realm}?${query}`, { ca: env.ca.caCertPem, headers: basic('admin-user', 'admin-password') });
    assert.equal(viaGet.status, 200);
    const body = JSON.parse(viaGet.body) as { token: string; access_token: string };
    assert.equal(body.token, body.access_token);

    const wrongPassword = await request(`${env.tokenServer.realm}?${query}`, { ca: env.ca.caCertPem, headers: basic('admin-user', 'nope') });
    assert.equal(wrongPassword.status, 401);
    const anonymous = await request(`${env.tokenServer.realm}?${query}`, { ca: env.ca.caCertPem });
    assert.equal(anonymous.status, 401);
    assert.match(String(anonymous.headers['www-authenticate']), /^Basic realm=/);

    const principal = env.addServicePrincipal('push');
    const refreshToken = await env.acrRefreshToken(principal);
    const asTokenUser = await request(`${env.tokenServer.realm}?${query}`, { ca: env.ca.caCertPem, headers: basic(ACR_REFRESH_TOKEN_USERNAME, refreshToken) });
    assert.equal(asTokenUser.status, 200);
    assert.equal(decodeJwt((JSON.parse(asTokenUser.body) as { access_token: string }).access_token).claims.sub, principal.objectId);
  });

  void it('parses Docker scopes whose repository names contain colons', () => {
    assert.deepEqual(parseScope('repository:host:5000/team/app:pull,push'), { type: 'repository', name: 'host:5000/team/app', actions: ['pull', 'push'] });
    assert.deepEqual(parseScope('registry:catalog:*'), { type: 'registry', name: 'catalog', actions: ['*'] });
    assert.equal(parseScope('repository'), undefined);
  });
});
