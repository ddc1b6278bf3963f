import { readFile } from 'node:fs/promises';
import { SingleFlightCache } from '../concurrency.js';
import { AuthenticationError } from '../errors.js';
import { errorDetail, type HttpResponse, type HttpTransport } from '../http/transport.js';
import { jwtExpiryMs, parseCertificateBundle, signClientAssertion, type SigningCertificate } from './jwt.js';
import type { SecretRegistry } from '../log.js';

export interface AccessToken {
  token: string;
  expiresOnMs: number;
}

/** Anything that hands out Entra access tokens for a scope such as `https://containerregistry.azure.net/.default`. */
export interface TokenCredential {
  getToken(scope: string): Promise<AccessToken>;
}

/** Where a federated client assertion comes from. */
export type AssertionSource =
  /** Workload identity federation of an Azure DevOps service connection: an ID token from the job's OIDC endpoint. */
  | { kind: 'devopsOidc'; oidcRequestUri: string; serviceConnectionId: string; systemAccessToken: string }
  /** AKS workload identity: the projected service-account token the kubelet keeps fresh in a file. */
  | { kind: 'tokenFile'; path: string };

/** Every way the product can obtain an Entra token; the task inputs map onto exactly one of these. */
export type AzureIdentity =
  | { kind: 'clientSecret'; authorityUrl: string; tenantId: string; clientId: string; clientSecret: string }
  | { kind: 'clientCertificate'; authorityUrl: string; tenantId: string; clientId: string; certificatePem: string }
  | { kind: 'federated'; authorityUrl: string; tenantId: string; clientId: string; assertion: AssertionSource }
  /** IMDS on the node; `clientId` picks a user-assigned identity, none means system-assigned. */
  | { kind: 'managedIdentity'; endpoint: string; clientId?: string };

/** The instance metadata service that managed identities answer on. */
export const IMDS_ENDPOINT = 'http://169.254.169.254';

// Refresh this long before expiry so a token never dies in the middle of a request.
const EXPIRY_MARGIN_MS = 5 * 60_000;

export function createCredential(identity: AzureIdentity, http: HttpTransport, secrets: SecretRegistry): TokenCredential {
  const credential = identity.kind === 'managedIdentity' ? new ManagedIdentityCredential(identity, http, secrets) : new ClientCredential(identity, http, secrets);
  return new CachingCredential(credential);
}

/** One token per scope, asked for once however many requests need it at the same moment. */
class CachingCredential implements TokenCredential {
  private readonly cache = new SingleFlightCache<AccessToken>((token) => token.expiresOnMs - EXPIRY_MARGIN_MS > Date.now());

  constructor(private readonly inner: TokenCredential) {}

  getToken(scope: string): Promise<AccessToken> {
    return this.cache.get(scope, () => this.inner.getToken(scope));
  }
}

interface EntraTokenResponse {
  access_token?: string;
  expires_in?: number | string;
}

/**
 * An Entra (or IMDS) token response: the token registered as a secret before anything else sees
 * it, its expiry from the JWT itself when it has one; any other answer is one AuthenticationError
 * that starts with `refusal` and carries the server's error (RFC 6749 section 5.2).
 */
async function readEntraToken(response: HttpResponse, secrets: SecretRegistry, refusal: string): Promise<AccessToken> {
  const text = await response.text();
  let body: EntraTokenResponse = {};
  try {
    body = JSON.parse(text) as EntraTokenResponse;
  } catch {
    // Not JSON: the error detail below quotes the text.
  }
  if (response.status !== 200 || !body.access_token) {
    throw new AuthenticationError(`${refusal}: ${errorDetail(text) || `HTTP ${response.status}`}`);
  }
  secrets.register(body.access_token);
  return { token: body.access_token, expiresOnMs: jwtExpiryMs(body.access_token, Date.now() + Number(body.expires_in ?? 3600) * 1000) };
}

/** The OAuth 2.0 client-credentials grant against the connection's own authority. */
class ClientCredential implements TokenCredential {
  private readonly tokenEndpoint: string;
  private readonly signer?: SigningCertificate;

  constructor(
    private readonly identity: Exclude<AzureIdentity, { kind: 'managedIdentity' }>,
    private readonly http: HttpTransport,
    private readonly secrets: SecretRegistry,
  ) {
    const authority = identity.authorityUrl.endsWith('/') ? identity.authorityUrl : `${identity.authorityUrl}/`;
    this.tokenEndpoint = new URL(`${encodeURIComponent(identity.tenantId)}/oauth2/v2.0/token`, authority).href;
    if (identity.kind === 'clientCertificate') this.signer = parseCertificateBundle(identity.certificatePem);
  }

  async getToken(scope: string): Promise<AccessToken> {
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: this.identity.clientId, scope });
    await this.addClientAuthentication(form);
    const response = await this.http.send({
      method: 'POST',
      url: this.tokenEndpoint,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
      endpoint: 'Entra ID',
    });
    return this.readToken(response, scope);
  }

  private async addClientAuthentication(form: URLSearchParams): Promise<void> {
    const identity = this.identity;
    if (identity.kind === 'clientSecret') {
      form.set('client_secret', identity.clientSecret);
      return;
    }
    const assertion = identity.kind === 'clientCertificate' ? signClientAssertion(this.signer!, identity.clientId, this.tokenEndpoint) : await this.federatedAssertion(identity.assertion);
    this.secrets.register(assertion);
    form.set('client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    form.set('client_assertion', assertion);
  }

  /** Fetched anew for every token request: Azure DevOps ID tokens live about ten minutes. */
  private async federatedAssertion(source: AssertionSource): Promise<string> {
    if (source.kind === 'tokenFile') {
      try {
        return (await readFile(source.path, 'utf8')).trim();
      } catch (error) {
        throw new AuthenticationError(`Cannot read the federated token file ${source.path} (${(error as NodeJS.ErrnoException).code}): is AKS workload identity enabled for this pod?`);
      }
    }
    const url = new URL(source.oidcRequestUri);
    url.searchParams.set('api-version', '7.1');
    url.searchParams.set('serviceConnectionId', source.serviceConnectionId);
    const response = await this.http.send({
      method: 'POST',
      url,
      headers: { authorization: `Bearer ${source.systemAccessToken}`, 'content-type': 'application/json', accept: 'application/json' },
      body: '{}',
      endpoint: 'the Azure DevOps OIDC endpoint',
    });
    if (response.status !== 200) {
      const detail = (await response.text()).slice(0, 300);
      throw new AuthenticationError(
        `Azure DevOps refused an ID token for service connection ${source.serviceConnectionId} (HTTP ${response.status}: ${detail}). Check that the pipeline may use the connection and that System.AccessToken is available to the job.`,
      );
    }
    const { oidcToken } = await response.json<{ oidcToken?: string }>();
    if (!oidcToken) throw new AuthenticationError('Azure DevOps answered without an oidcToken for the workload identity federation connection.');
    this.secrets.register(oidcToken);
    return oidcToken;
  }

  private async readToken(response: HttpResponse, scope: string): Promise<AccessToken> {
    return readEntraToken(response, this.secrets, `Entra ID refused a token for client ${this.identity.clientId} (scope ${scope})`);
  }
}

/** Managed identity through the instance metadata service (IMDS) of the node the agent runs on. */
class ManagedIdentityCredential implements TokenCredential {
  constructor(
    private readonly identity: Extract<AzureIdentity, { kind: 'managedIdentity' }>,
    private readonly http: HttpTransport,
    private readonly secrets: SecretRegistry,
  ) {}

  async getToken(scope: string): Promise<AccessToken> {
    const url = new URL('/metadata/identity/oauth2/token', this.identity.endpoint);
    url.searchParams.set('api-version', '2018-02-01');
    url.searchParams.set('resource', scope.replace(/\/\.default$/, ''));
    if (this.identity.clientId) url.searchParams.set('client_id', this.identity.clientId);
    const which = this.identity.clientId ? `user-assigned identity ${this.identity.clientId}` : 'the system-assigned identity';
    // IMDS also answers 404 and 410 while the identity is still being attached to the node: not yet, rather than no.
    const response = await this.http.send({ method: 'GET', url, headers: { metadata: 'true' }, endpoint: 'the managed identity endpoint', retryStatuses: [404, 410] });
    return readEntraToken(response, this.secrets, `The managed identity endpoint refused a token for ${which}`);
  }
}
