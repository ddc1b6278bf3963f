// The identities a registry task can push as, set up against the ACR environment's stand-ins, and
// the checks every registry task test makes of a run. Shared by the image and chart task tests.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openRegistrySession, type RegistrySession } from '../../src/acr/session.js';
import { silentLogger } from '../../src/log.js';
import type { AcrEnvironment } from '../env/environment.js';
import { createJwtIssuer } from '../env/jwt.js';
import type { ServiceConnection, TaskRun, TaskRunOptions } from './taskRunner.js';

/** Task inputs and agent context that make a registry task act as one identity. */
export interface RegistryIdentity {
  inputs: Record<string, string>;
  options: Omit<TaskRunOptions, 'inputs'>;
  /** The Entra client id the identity signs in as, when it has one. */
  clientId?: string;
}

/** A service principal with a client secret, as an AzureRM connection of scheme ServicePrincipal. */
export function secretConnection(env: AcrEnvironment, role: 'push' | 'pull' = 'push', secretOverride?: string): ServiceConnection {
  const principal = env.addServicePrincipal(role);
  return {
    scheme: 'ServicePrincipal',
    url: 'https://management.azure.com/',
    parameters: { serviceprincipalid: principal.clientId, serviceprincipalkey: secretOverride ?? principal.clientSecret, tenantid: env.entra.tenantId, authenticationType: 'spnKey' },
    data: { environmentAuthorityUrl: env.entra.authorityUrl },
  };
}

/** A service principal that signs a client assertion with its certificate. */
export async function certificateIdentity(env: AcrEnvironment): Promise<RegistryIdentity> {
  const clientId = randomUUID();
  const certificate = await env.ca.issue(`client-${clientId}`, [], { keyType: 'rsa' });
  const app = env.entra.addCertificateClient(clientId, certificate.certPem);
  env.tokenServer.addPrincipal(app.objectId, 'push');
  const parameters = { serviceprincipalid: clientId, tenantid: env.entra.tenantId, authenticationType: 'spnCertificate', servicePrincipalCertificate: `${certificate.certPem}\n${certificate.keyPem}` };
  return { clientId, inputs: { azureSubscription: 'arm' }, options: { connections: { arm: { scheme: 'ServicePrincipal', parameters, data: { environmentAuthorityUrl: env.entra.authorityUrl } } } } };
}

/** Workload identity federation: an ID token from the job's OIDC endpoint for each Entra request. */
export function federatedIdentity(env: AcrEnvironment): RegistryIdentity & { serviceConnectionId: string } {
  const clientId = randomUUID();
  const connection = env.devops.addServiceConnection(`wif-${clientId.slice(0, 8)}`);
  const app = env.entra.addFederatedClient(clientId, { issuer: env.devops.issuer, subject: connection.subject, publicJwk: env.devops.publicJwk });
  env.tokenServer.addPrincipal(app.objectId, 'push');
  return {
    clientId,
    serviceConnectionId: connection.id,
    inputs: { azureSubscription: connection.id },
    options: {
      connections: {
        [connection.id]: { scheme: 'WorkloadIdentityFederation', parameters: { serviceprincipalid: clientId, tenantid: env.entra.tenantId }, data: { environmentAuthorityUrl: env.entra.authorityUrl } },
        SystemVssConnection: { scheme: 'OAuth', url: env.devops.collectionUri, parameters: { AccessToken: env.devops.systemAccessToken } },
      },
      variables: { 'System.OidcRequestUri': env.devops.oidcRequestUri },
    },
  };
}

/** A managed identity service connection: the node's system-assigned identity through IMDS. */
export function managedIdentityConnection(env: AcrEnvironment): RegistryIdentity {
  const app = env.entra.addManagedIdentity();
  env.tokenServer.addPrincipal(app.objectId, 'push');
  return {
    inputs: { azureSubscription: 'arm' },
    options: {
      connections: { arm: { scheme: 'ManagedServiceIdentity', parameters: { tenantid: env.entra.tenantId }, data: { environmentAuthorityUrl: env.entra.authorityUrl } } },
      env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: env.entra.imdsUrl },
    },
  };
}

/** authMode agentIdentity without workload identity: a user-assigned managed identity named by AZURE_CLIENT_ID. */
export function agentManagedIdentity(env: AcrEnvironment): RegistryIdentity {
  const clientId = randomUUID();
  const app = env.entra.addManagedIdentity({ clientId });
  env.tokenServer.addPrincipal(app.objectId, 'push');
  return { clientId, inputs: { authMode: 'agentIdentity' }, options: { connections: {}, env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: env.entra.imdsUrl, AZURE_CLIENT_ID: clientId } } };
}

/** authMode agentIdentity with AKS workload identity: the projected service account token file. */
export async function agentWorkloadIdentity(env: AcrEnvironment, work: string): Promise<RegistryIdentity> {
  const cluster = await createJwtIssuer('https://oidc.aks.example/cluster-1/');
  const clientId = randomUUID();
  const subject = 'system:serviceaccount:azp:agent';
  const app = env.entra.addFederatedClient(clientId, { issuer: cluster.issuer, subject, publicJwk: cluster.publicJwk });
  env.tokenServer.addPrincipal(app.objectId, 'push');
  const tokenFile = join(work, `projected-${clientId}`);
  const now = Math.floor(Date.now() / 1000);
  await writeFile(tokenFile, cluster.sign({ sub: subject, aud: 'api://AzureADTokenExchange', iat: now, exp: now + 3600 }), { mode: 0o600 });
  return {
    clientId,
    inputs: { authMode: 'agentIdentity' },
    options: { connections: {}, env: { AZURE_CLIENT_ID: clientId, AZURE_TENANT_ID: env.entra.tenantId, AZURE_FEDERATED_TOKEN_FILE: tokenFile, AZURE_AUTHORITY_HOST: env.entra.authorityUrl } },
  };
}

/** authMode registryCredentials: a repository-scoped token as username and password. */
export function registryTokenIdentity(env: AcrEnvironment, repositories: string[]): RegistryIdentity {
  const password = randomBytes(24).toString('base64url');
  const username = `ci-push-token-${randomBytes(4).toString('hex')}`;
  env.tokenServer.addUser(username, password, 'push', { repositories });
  return {
    inputs: { authMode: 'registryCredentials', dockerRegistryServiceConnection: 'reg' },
    options: { connections: { reg: { scheme: 'UsernamePassword', url: `https://${env.registryHost}`, parameters: { username, password } } } },
  };
}

/** Like the agent's log: no client secret, password or token any stand-in issued may appear unmasked. */
export function assertNoSecretPrinted(env: AcrEnvironment, run: TaskRun): void {
  for (const secret of env.secrets()) assert.ok(!run.maskedOutput.includes(secret), `a secret or token was printed: ${secret.slice(0, 12)}…`);
}

export function assertSucceeded(run: TaskRun): void {
  assert.equal(run.result, 'Succeeded', `task failed: ${run.errors.join(' | ')}\n${run.maskedOutput.slice(-3000)}`);
  assert.equal(run.exitCode, 0);
}

/** Fails with exactly one error line matching `pattern`. */
export function assertFailedWith(run: TaskRun, pattern: RegExp): void {
  assert.equal(run.result, 'Failed', run.maskedOutput.slice(-2000));
  assert.equal(run.errors.length, 1, run.errors.join(' | '));
  assert.match(run.errors[0], pattern);
  assert.ok(!run.errors[0].includes('\n'));
  assert.notEqual(run.exitCode, 0);
}

/** The core's registry session, in-process, as a fresh service principal with `role`, trusting the test CA. */
export function coreSession(env: AcrEnvironment, role: 'push' | 'pull' = 'pull'): RegistrySession {
  const principal = env.addServicePrincipal(role);
  return openRegistrySession({
    host: env.registryHost,
    auth: { kind: 'azure', identity: { kind: 'clientSecret', authorityUrl: env.entra.authorityUrl, tenantId: env.entra.tenantId, clientId: principal.clientId, clientSecret: principal.clientSecret } },
    transport: { caCertificates: [env.ca.caCertPem] },
    logger: silentLogger,
    secrets: { register() {} },
  });
}
