// The Entra ID and Azure DevOps stand-ins are strict where the real services are: wrong secrets,
// foreign keys, mismatched federated subjects and expired assertions are refused with Entra's codes.
import assert from 'node:assert/strict';
import { X509Certificate, createHash, randomUUID, type JsonWebKey } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTestCa, type IssuedCertificate, type TestCa } from '../env/ca.js';
import { startDevOps, type DevOpsStandIn } from '../env/devops.js';
import { CLIENT_ASSERTION_TYPE_JWT_BEARER, FEDERATED_TOKEN_AUDIENCE, startEntra, type EntraStandIn } from '../env/entra.js';
import { formBody, request, type ClientResponse } from '../env/http.js';
import { decodeJwt, nowSeconds, signJwt, verifyJwt } from '../env/jwt.js';

const ACR_SCOPE = 'https://containerregistry.azure.net/.default';

void describe('Entra ID and Azure DevOps stand-ins', () => {
  let dir: string;
  let ca: TestCa;
  let entra: EntraStandIn;
  let devops: DevOpsStandIn;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'entra-selftest-'));
    ca = await createTestCa(path.join(dir, 'ca'));
    [entra, devops] = await Promise.all([startEntra({ ca }), startDevOps({ ca })]);
  });

  after(async () => {
    await Promise.all([entra?.stop(), devops?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  const tokenEndpoint = () => `${entra.url}/${entra.tenantId}/oauth2/v2.0/token`;
  const requestToken = (fields: Record<string, string>, tenant = entra.tenantId): Promise<ClientResponse> =>
    request(`${entra.url}/${tenant}/oauth2/v2.0/token`, { method: 'POST', ca: ca.caCertPem, ...formBody(fields) });
  const errorOf = (response: ClientResponse) => JSON.parse(response.body) as { error: string; error_description: string; error_codes: number[] };
  const accessTokenOf = (response: ClientResponse) => (JSON.parse(response.body) as { access_token: string }).access_token;

  /** A client assertion as MSAL builds it: x5t of the certificate, aud = token endpoint, iss = sub = client id. */
  function certificateAssertion(clientId: string, cert: IssuedCertificate, signingKeyPem = cert.keyPem, audience = tokenEndpoint()): string {
    const x5t = createHash('sha1').update(new X509Certificate(cert.certPem).raw).digest('base64url');
    const now = nowSeconds();
    return signJwt({ aud: audience, iss: clientId, sub: clientId, jti: randomUUID(), nbf: now, exp: now + 600 }, signingKeyPem, { x5t });
  }

  void it('publishes OpenID discovery and keys that verify its tokens', async () => {
    const discovery = await request(`${entra.url}/${entra.tenantId}/v2.0/.well-known/openid-configuration`, { ca: ca.caCertPem });
    const config = JSON.parse(discovery.body) as { issuer: string; token_endpoint: string; jwks_uri: string };
    assert.equal(config.issuer, `${entra.url}/${entra.tenantId}/v2.0`);
    assert.equal(config.token_endpoint, tokenEndpoint());
    const jwks = JSON.parse((await request(config.jwks_uri, { ca: ca.caCertPem })).body) as { keys: (JsonWebKey & { kid: string })[] };

    entra.addSecretClient('discovery-client', 'discovery-secret');
    const token = accessTokenOf(await requestToken({ grant_type: 'client_credentials', client_id: 'discovery-client', client_secret: 'discovery-secret', scope: ACR_SCOPE }));
    const key = jwks.keys.find((candidate) => candidate.kid === decodeJwt(token).header.kid);
    assert.ok(key, 'the token names a key from jwks_uri');
    assert.equal(verifyJwt(token, key, { issuer: config.issuer }).claims.aud, 'https://containerregistry.azure.net');
  });

  void it('issues a client-secret token with the documented claims and refuses a wrong secret', async () => {
    const app = entra.addSecretClient('secret-client', 'right-secret');
    const response = await requestToken({ grant_type: 'client_credentials', client_id: 'secret-client', client_secret: 'right-secret', scope: ACR_SCOPE });
    assert.equal(response.status, 200);
    const body = JSON.parse(response.body) as { token_type: string; expires_in: number; access_token: string };
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.expires_in, 3600);
    const claims = entra.verifyAccessToken(body.access_token);
    assert.equal(claims.aud, 'https://containerregistry.azure.net');
    assert.equal(claims.iss, `${entra.url}/${entra.tenantId}/v2.0`);
    assert.equal(claims.tid, entra.tenantId);
    assert.equal(claims.oid, app.objectId);
    assert.equal(claims.appid, 'secret-client');
    assert.equal(claims.azp, 'secret-client');
    assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 3600);

    const wrong = await requestToken({ grant_type: 'client_credentials', client_id: 'secret-client', client_secret: 'wrong-secret', scope: ACR_SCOPE });
    assert.equal(wrong.status, 401);
    assert.equal(errorOf(wrong).error, 'invalid_client');
    assert.match(errorOf(wrong).error_description, /^AADSTS7000215: Invalid client secret provided\./);
    const record = entra.tokenRequests.at(-1);
    assert.equal(record?.error, 'AADSTS7000215');
    assert.equal(record?.host, new URL(entra.url).host);
  });

  void it('refuses unknown clients and tenants and scopes without /.default', async () => {
    entra.addSecretClient('scoped-client', 'scoped-secret');
    const unknownClient = await requestToken({ grant_type: 'client_credentials', client_id: 'nobody', client_secret: 'x', scope: ACR_SCOPE });
    assert.deepEqual([unknownClient.status, errorOf(unknownClient).error_codes], [400, [700016]]);
    const otherTenant = await requestToken({ grant_type: 'client_credentials', client_id: 'scoped-client', client_secret: 'scoped-secret', scope: ACR_SCOPE }, randomUUID());
    assert.deepEqual([otherTenant.status, errorOf(otherTenant).error_codes], [400, [90002]]);
    const badScope = await requestToken({ grant_type: 'client_credentials', client_id: 'scoped-client', client_secret: 'scoped-secret', scope: 'https://containerregistry.azure.net' });
    assert.deepEqual([badScope.status, errorOf(badScope).error], [400, 'invalid_scope']);
  });

  void it('accepts a certificate assertion and refuses one signed by another key', async () => {
    const [cert, otherCert] = await Promise.all([
      ca.issue('entra-client-cert', [], { keyType: 'rsa' }),
      ca.issue('entra-other-cert', [], { keyType: 'rsa' }),
    ]);
    const app = entra.addCertificateClient('cert-client', cert.certPem);
    const fields = (assertion: string) => ({
      grant_type: 'client_credentials', client_id: 'cert-client', scope: ACR_SCOPE,
      client_assertion_type: CLIENT_ASSERTION_TYPE_JWT_BEARER, client_assertion: assertion,
    });

    const accepted = await requestToken(fields(certificateAssertion('cert-client', cert)));
    assert.equal(accepted.status, 200);
    assert.equal(entra.verifyAccessToken(accessTokenOf(accepted)).oid, app.objectId);

    // Right thumbprint, wrong private key: the signature check must catch it.
    const forged = await requestToken(fields(certificateAssertion('cert-client', cert, otherCert.keyPem)));
    assert.deepEqual([forged.status, errorOf(forged).error, errorOf(forged).error_codes], [401, 'invalid_client', [700027]]);
    // A certificate the app never registered.
    const unregistered = await requestToken(fields(certificateAssertion('cert-client', otherCert)));
    assert.deepEqual([unregistered.status, errorOf(unregistered).error_codes], [401, [700027]]);
    // An assertion meant for another token endpoint.
    const wrongAudience = await requestToken(fields(certificateAssertion('cert-client', cert, cert.keyPem, 'https://login.microsoftonline.com/other/oauth2/v2.0/token')));
    assert.equal(wrongAudience.status, 401);
  });

  void it('exchanges an Azure DevOps OIDC token for a federated client and refuses a wrong subject', async () => {
    const connection = devops.addServiceConnection('acr-connection');
    assert.equal(connection.subject, `sc://${devops.organization}/${devops.projectName}/acr-connection`);
    const app = entra.addFederatedClient('federated-client', { issuer: devops.issuer, subject: connection.subject, publicJwk: devops.publicJwk });
    entra.addFederatedClient('other-federated-client', { issuer: devops.issuer, subject: devops.subjectFor('another-connection'), publicJwk: devops.publicJwk });

    const oidcToken = await fetchOidcToken(connection.id);
    const oidcClaims = decodeJwt(oidcToken).claims;
    assert.equal(oidcClaims.iss, `https://vstoken.dev.azure.com/${devops.organizationId}`);
    assert.equal(oidcClaims.aud, FEDERATED_TOKEN_AUDIENCE);
    assert.equal((oidcClaims.exp ?? 0) - (oidcClaims.iat ?? 0), 600);

    const exchange = (clientId: string, assertion: string) => requestToken({
      grant_type: 'client_credentials', client_id: clientId, scope: ACR_SCOPE,
      client_assertion_type: CLIENT_ASSERTION_TYPE_JWT_BEARER, client_assertion: assertion,
    });
    const accepted = await exchange('federated-client', oidcToken);
    assert.equal(accepted.status, 200);
    assert.equal(entra.verifyAccessToken(accessTokenOf(accepted)).oid, app.objectId);
    assert.equal(entra.tokenRequests.at(-1)?.credentialType, 'federated');

    const wrongSubject = await exchange('other-federated-client', await fetchOidcToken(connection.id));
    assert.equal(wrongSubject.status, 400);
    assert.match(errorOf(wrongSubject).error_description, /^AADSTS70021: No matching federated identity record found/);
  });

  void it('refuses an expired federated token with AADSTS700024', async () => {
    const connection = devops.addServiceConnection('short-lived');
    entra.addFederatedClient('expiring-client', { issuer: devops.issuer, subject: connection.subject, publicJwk: devops.publicJwk });
    devops.oidcTokenLifetimeSeconds = -1;
    try {
      const expired = await requestToken({
        grant_type: 'client_credentials', client_id: 'expiring-client', scope: ACR_SCOPE,
        client_assertion_type: CLIENT_ASSERTION_TYPE_JWT_BEARER, client_assertion: await fetchOidcToken(connection.id),
      });
      assert.deepEqual([expired.status, errorOf(expired).error_codes], [400, [700024]]);
    } finally {
      devops.oidcTokenLifetimeSeconds = 600;
    }
  });

  void it('serves OIDC tokens only to the job bearer, on both documented URLs', async () => {
    const connection = devops.addServiceConnection('bearer-check');
    const url = `${devops.oidcRequestUri}?api-version=7.1&serviceConnectionId=${connection.id}`;
    const anonymous = await request(url, { method: 'POST', ca: ca.caCertPem });
    assert.equal(anonymous.status, 401);
    const wrongBearer = await request(url, { method: 'POST', ca: ca.caCertPem, headers: { authorization: 'Bearer not-the-token' } });
    assert.equal(wrongBearer.status, 401);
    const byName = `${devops.collectionUri}${devops.projectName}/_apis/distributedtask/hubs/${devops.hub}/plans/${devops.planId}/jobs/${devops.jobId}/oidctoken?serviceConnectionId=${connection.id}&api-version=7.1-preview.1`;
    const viaProjectName = await request(byName, { method: 'POST', ca: ca.caCertPem, headers: { authorization: `Bearer ${devops.systemAccessToken}` } });
    assert.equal(viaProjectName.status, 200);
    assert.equal(decodeJwt((JSON.parse(viaProjectName.body) as { oidcToken: string }).oidcToken).claims.sub, connection.subject);
    const otherJob = await request(url.replace(devops.jobId, randomUUID()), { method: 'POST', ca: ca.caCertPem, headers: { authorization: `Bearer ${devops.systemAccessToken}` } });
    assert.equal(otherJob.status, 404);
    const unknownConnection = await request(url.replace(connection.id, randomUUID()), { method: 'POST', ca: ca.caCertPem, headers: { authorization: `Bearer ${devops.systemAccessToken}` } });
    assert.equal(unknownConnection.status, 400);
  });

  void it('answers the managed identity endpoint in IMDS shape for system- and user-assigned identities', async () => {
    const system = entra.addManagedIdentity();
    const user = entra.addManagedIdentity({ clientId: 'user-assigned-client' });
    const imds = (query: string, headers: Record<string, string> = { Metadata: 'true' }) =>
      request(`${entra.imdsUrl}/metadata/identity/oauth2/token?api-version=2018-02-01&${query}`, { headers });

    const noHeader = await imds('resource=https://containerregistry.azure.net', {});
    assert.equal(noHeader.status, 400);

    const systemResponse = await imds(`resource=${encodeURIComponent('https://containerregistry.azure.net')}`);
    assert.equal(systemResponse.status, 200);
    const body = JSON.parse(systemResponse.body) as Record<string, unknown>;
    for (const field of ['access_token', 'expires_in', 'expires_on', 'resource', 'token_type']) assert.equal(typeof body[field], 'string', field);
    assert.equal(body.token_type, 'Bearer');
    assert.equal(entra.verifyAccessToken(body.access_token as string).oid, system.objectId);

    const userResponse = await imds(`resource=${encodeURIComponent('https://containerregistry.azure.net')}&client_id=user-assigned-client`);
    assert.equal(entra.verifyAccessToken((JSON.parse(userResponse.body) as { access_token: string }).access_token).oid, user.objectId);

    const unknown = await imds(`resource=${encodeURIComponent('https://containerregistry.azure.net')}&client_id=${randomUUID()}`);
    assert.equal(unknown.status, 400);
  });

  void it('issues already expired tokens when the lifetime is negative, and verifyAccessToken refuses them', async () => {
    entra.addSecretClient('expired-client', 'expired-secret');
    entra.accessTokenLifetimeSeconds = -5;
    try {
      const response = await requestToken({ grant_type: 'client_credentials', client_id: 'expired-client', client_secret: 'expired-secret', scope: ACR_SCOPE });
      assert.throws(() => entra.verifyAccessToken(accessTokenOf(response)), /expired/);
    } finally {
      entra.accessTokenLifetimeSeconds = 3600;
    }
  });

  async function fetchOidcToken(serviceConnectionId: string): Promise<string> {
    const response = await request(`${devops.oidcRequestUri}?api-version=7.1&serviceConnectionId=${serviceConnectionId}`, {
      method: 'POST', ca: ca.caCertPem, headers: { authorization: `Bearer ${devops.systemAccessToken}` },
    });
    assert.equal(response.status, 200, response.body);
    return (JSON.parse(response.body) as { oidcToken: string }).oidcToken;
  }
});
