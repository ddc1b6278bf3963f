// Entra ID stand-in: OpenID discovery, JWKS, the v2.0 token endpoint (client credentials with a
// secret, a certificate assertion or a federated token) and the managed identity endpoint in IMDS
// shape. Wire shapes follow Microsoft's identity platform docs; error bodies carry the AADSTS codes
// real Entra sends, so client code that surfaces them can be tested.
import { X509Certificate, createHash, randomUUID, type JsonWebKey } from 'node:crypto';
import type * as http from 'node:http';
import type { TestCa } from './ca.js';
import { readForm, requestUrl, sendJson, startServer, type RunningServer } from './http.js';
import { JwtError, createJwtIssuer, decodeJwt, generateRsaKeyPair, nowSeconds, verifyJwt, type IssuedToken, type JwtClaims } from './jwt.js';

export const CLIENT_ASSERTION_TYPE_JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const FEDERATED_TOKEN_AUDIENCE = 'api://AzureADTokenExchange';

export interface EntraApp {
  clientId: string;
  /** The service principal's object id: the `oid` in its tokens, what role assignments name. */
  objectId: string;
}

export interface FederatedCredential {
  issuer: string;
  subject: string;
  /** The issuer's signing key (real Entra fetches it from the issuer's discovery document). */
  publicJwk: JsonWebKey;
  /** Default `api://AzureADTokenExchange`. */
  audience?: string;
}

export interface EntraTokenRequest {
  /** The Host header: tests assert that no request went to a host the connection does not name. */
  host: string;
  path: string;
  clientId?: string;
  /** `client_credentials`, or `managed_identity` for the IMDS endpoint. */
  grantType?: string;
  /** The scope (token endpoint) or resource (IMDS) asked for. */
  scope?: string;
  /** `secret`, `certificate`, `federated` or `managed_identity` once the client authenticated. */
  credentialType?: string;
  status: number;
  /** The AADSTS code or IMDS error of a refused request. */
  error?: string;
}

export interface StartEntraOptions {
  ca: TestCa;
  /** Default: a random GUID. */
  tenantId?: string;
}

export interface EntraStandIn {
  /** `https://127.0.0.1:<port>`, the authority host. */
  url: string;
  /** `url + '/'`, as `environmentAuthorityUrl` and `AZURE_AUTHORITY_HOST` carry it. */
  authorityUrl: string;
  tenantId: string;
  /** `http://127.0.0.1:<port>` — the IMDS endpoint is plain HTTP like the real one. */
  imdsUrl: string;
  addSecretClient(clientId: string, secret: string): EntraApp;
  addCertificateClient(clientId: string, certPem: string): EntraApp;
  addFederatedClient(clientId: string, credential: FederatedCredential): EntraApp;
  /** Without `clientId`: the system-assigned identity. */
  addManagedIdentity(options?: { clientId?: string }): EntraApp;
  /** Lifetime of the access tokens issued from now on; negative values make already expired tokens. Default 3600. */
  accessTokenLifetimeSeconds: number;
  tokenRequests: EntraTokenRequest[];
  issuedTokens: IssuedToken[];
  /** Every client secret registered, for leak scans. */
  clientSecrets(): string[];
  /** Checks signature, issuer and expiry of a token this stand-in issued; throws a JwtError otherwise. */
  verifyAccessToken(token: string): JwtClaims;
  stop(): Promise<void>;
}

interface RegisteredCertificate {
  x5t: string;
  x5tS256: string;
  certificate: X509Certificate;
}

interface AppRegistration extends EntraApp {
  secrets: string[];
  certificates: RegisteredCertificate[];
  federated: FederatedCredential[];
}

/** An Entra error response: `{error, error_description, error_codes, timestamp, trace_id, correlation_id}`. */
class EntraError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly aadsts: number,
    description: string,
  ) {
    super(`AADSTS${aadsts}: ${description}`);
  }

  body(): Record<string, unknown> {
    return {
      error: this.error,
      error_description: `${this.message}\r\nTrace ID: ${randomUUID()}\r\nCorrelation ID: ${randomUUID()}\r\nTimestamp: ${new Date().toISOString()}`,
      error_codes: [this.aadsts],
      timestamp: new Date().toISOString(),
      trace_id: randomUUID(),
      correlation_id: randomUUID(),
    };
  }
}

function certificateThumbprints(certPem: string): RegisteredCertificate {
  const certificate = new X509Certificate(certPem);
  return {
    x5t: createHash('sha1').update(certificate.raw).digest('base64url'),
    x5tS256: createHash('sha256').update(certificate.raw).digest('base64url'),
    certificate,
  };
}

/** Entra normalises nothing: `https://x/.default` → audience `https://x`, `GUID/.default` → `GUID`. */
function audienceOfScope(scope: string | null): string {
  const scopes = (scope ?? '').split(' ').filter(Boolean);
  if (scopes.length !== 1 || !scopes[0].endsWith('/.default')) {
    throw new EntraError(400, 'invalid_scope', 1002012,
      `The provided value for scope ${scope ?? ''} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
  }
  return scopes[0].slice(0, -'/.default'.length);
}

export async function startEntra(options: StartEntraOptions): Promise<EntraStandIn> {
  const tenantId = options.tenantId ?? randomUUID();
  const apps = new Map<string, AppRegistration>();
  const managedIdentities = new Map<string, EntraApp>();
  let systemAssignedIdentity: EntraApp | undefined;
  const tokenRequests: EntraTokenRequest[] = [];
  const issuedTokens: IssuedToken[] = [];

  const [tls, keyPair] = await Promise.all([
    options.ca.issue(`entra-${randomUUID()}`, ['127.0.0.1', 'localhost']),
    // The issuer URL needs the port, which exists only once the server listens; the key does not.
    generateRsaKeyPair(),
  ]);

  const standIn: EntraStandIn = {
    url: '',
    authorityUrl: '',
    tenantId,
    imdsUrl: '',
    accessTokenLifetimeSeconds: 3600,
    tokenRequests,
    issuedTokens,
    addSecretClient: (clientId, secret) => {
      const app = registration(clientId);
      app.secrets.push(secret);
      return publicView(app);
    },
    addCertificateClient: (clientId, certPem) => {
      const app = registration(clientId);
      app.certificates.push(certificateThumbprints(certPem));
      return publicView(app);
    },
    addFederatedClient: (clientId, credential) => {
      const app = registration(clientId);
      app.federated.push(credential);
      return publicView(app);
    },
    addManagedIdentity: ({ clientId } = {}) => {
      const identity = { clientId: clientId ?? randomUUID(), objectId: randomUUID() };
      if (clientId === undefined) systemAssignedIdentity = identity;
      else managedIdentities.set(clientId, identity);
      return identity;
    },
    clientSecrets: () => [...apps.values()].flatMap((app) => app.secrets),
    verifyAccessToken: (token) => tokenIssuer.verify(token),
    stop: async () => {
      await Promise.all([server.stop(), imds.stop()]);
    },
  };

  function registration(clientId: string): AppRegistration {
    let app = apps.get(clientId);
    if (!app) {
      app = { clientId, objectId: randomUUID(), secrets: [], certificates: [], federated: [] };
      apps.set(clientId, app);
    }
    return app;
  }

  function publicView(app: AppRegistration): EntraApp {
    return { clientId: app.clientId, objectId: app.objectId };
  }

  function issueAccessToken(identity: EntraApp, audience: string, credentialType: string): { token: string; claims: JwtClaims } {
    const now = nowSeconds();
    const claims: JwtClaims = {
      aud: audience,
      iss: tokenIssuer.issuer,
      iat: now,
      nbf: now,
      exp: now + standIn.accessTokenLifetimeSeconds,
      // v1 and v2 names for the client, so consumers of either token version find theirs.
      appid: identity.clientId,
      azp: identity.clientId,
      // 1 = secret, 2 = certificate or assertion (Entra's appidacr/azpacr values).
      azpacr: credentialType === 'secret' ? '1' : '2',
      idtyp: 'app',
      oid: identity.objectId,
      sub: identity.objectId,
      tid: tenantId,
      uti: randomUUID(),
      ver: '2.0',
    };
    const token = tokenIssuer.sign(claims);
    issuedTokens.push({ token, claims });
    return { token, claims };
  }

  /** The endpoint a client assertion must name as `aud`. */
  function tokenEndpoint(): string {
    return `${standIn.url}/${tenantId}/oauth2/v2.0/token`;
  }

  function authenticateWithAssertion(app: AppRegistration, assertion: string): string {
    let decoded;
    try {
      decoded = decodeJwt(assertion);
    } catch {
      throw new EntraError(400, 'invalid_request', 50027, 'JWT token is invalid or malformed.');
    }
    const thumbprint = decoded.header['x5t#S256'] ?? decoded.header.x5t;
    if (thumbprint !== undefined) {
      const registered = app.certificates.find((cert) => cert.x5tS256 === decoded.header['x5t#S256'] || cert.x5t === decoded.header.x5t);
      if (!registered) {
        throw new EntraError(401, 'invalid_client', 700027,
          `Client assertion failed signature validation. (Reason - The key was not found., Thumbprint of key used by client: '${String(thumbprint)}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${app.clientId}'.)`);
      }
      try {
        verifyJwt(assertion, registered.certificate.publicKey);
      } catch (error) {
        throw assertionError(error);
      }
      const { claims } = decoded;
      if (claims.iss !== app.clientId || claims.sub !== app.clientId) {
        throw new EntraError(401, 'invalid_client', 700021, "Client assertion application identifier doesn't match 'client_id' parameter.");
      }
      const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
      if (!audiences.includes(tokenEndpoint())) {
        throw new EntraError(401, 'invalid_client', 700211, `Client assertion audience ${JSON.stringify(claims.aud)} is not the token endpoint ${tokenEndpoint()}.`);
      }
      return 'certificate';
    }

    const { claims } = decoded;
    const credential = app.federated.find((candidate) =>
      candidate.issuer === claims.iss &&
      candidate.subject === claims.sub &&
      (Array.isArray(claims.aud) ? claims.aud : [claims.aud]).includes(candidate.audience ?? FEDERATED_TOKEN_AUDIENCE));
    if (!credential) {
      throw new EntraError(400, 'invalid_request', 70021,
        `No matching federated identity record found for presented assertion. Assertion Issuer: '${String(claims.iss)}'. Assertion Subject: '${String(claims.sub)}'. Assertion Audience: '${String(claims.aud)}'.`);
    }
    try {
      verifyJwt(assertion, credential.publicJwk);
    } catch (error) {
      throw assertionError(error);
    }
    return 'federated';
  }

  function assertionError(error: unknown): EntraError {
    const message = error instanceof JwtError ? error.message : String(error);
    if (/expired|not valid yet/.test(message)) {
      return new EntraError(400, 'invalid_client', 700024, `Client assertion is not within its valid time range. (${message})`);
    }
    return new EntraError(401, 'invalid_client', 700027, `Client assertion failed signature validation. (${message})`);
  }

  async function handleToken(req: http.IncomingMessage, res: http.ServerResponse, tenant: string, record: EntraTokenRequest): Promise<void> {
    if (req.method !== 'POST') throw new EntraError(405, 'invalid_request', 900561, 'The endpoint only accepts POST requests.');
    const form = await readForm(req);
    record.clientId = form.get('client_id') ?? undefined;
    record.grantType = form.get('grant_type') ?? undefined;
    record.scope = form.get('scope') ?? undefined;
    if (tenant !== tenantId) throw new EntraError(400, 'invalid_request', 90002, `Tenant '${tenant}' not found.`);
    if (record.grantType !== 'client_credentials') {
      throw new EntraError(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${record.grantType ?? ''}'.`);
    }
    if (!record.clientId) throw new EntraError(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_id'.");
    const audience = audienceOfScope(form.get('scope'));
    const app = apps.get(record.clientId);
    if (!app) {
      throw new EntraError(400, 'unauthorized_client', 700016,
        `Application with identifier '${record.clientId}' was not found in the directory '${tenantId}'.`);
    }
    const secret = form.get('client_secret');
    const assertion = form.get('client_assertion');
    if (secret !== null) {
      if (!app.secrets.includes(secret)) {
        throw new EntraError(401, 'invalid_client', 7000215,
          `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${app.clientId}'.`);
      }
      record.credentialType = 'secret';
    } else if (assertion !== null) {
      if (form.get('client_assertion_type') !== CLIENT_ASSERTION_TYPE_JWT_BEARER) {
        throw new EntraError(400, 'invalid_request', 900023, `client_assertion_type must be ${CLIENT_ASSERTION_TYPE_JWT_BEARER}.`);
      }
      record.credentialType = authenticateWithAssertion(app, assertion);
    } else {
      throw new EntraError(401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
    }
    const { token } = issueAccessToken(app, audience, record.credentialType);
    sendJson(res, 200, {
      token_type: 'Bearer',
      expires_in: standIn.accessTokenLifetimeSeconds,
      ext_expires_in: standIn.accessTokenLifetimeSeconds,
      access_token: token,
    });
  }

  const server: RunningServer = await startServer(async (req, res) => {
    const url = requestUrl(req);
    const discovery = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(url.pathname);
    const keys = /^\/([^/]+)\/discovery\/v2\.0\/keys$/.exec(url.pathname);
    const token = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(url.pathname);
    if (discovery && discovery[1] === tenantId) {
      const base = `${standIn.url}/${tenantId}`;
      sendJson(res, 200, {
        issuer: `${base}/v2.0`,
        token_endpoint: `${base}/oauth2/v2.0/token`,
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        jwks_uri: `${base}/discovery/v2.0/keys`,
        token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt'],
        response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
        subject_types_supported: ['pairwise'],
        id_token_signing_alg_values_supported: ['RS256'],
        scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
        tenant_region_scope: 'NA',
        cloud_instance_name: '127.0.0.1',
      });
    } else if (keys && keys[1] === tenantId) {
      sendJson(res, 200, tokenIssuer.jwks);
    } else if (token) {
      const record: EntraTokenRequest = { host: req.headers.host ?? '', path: url.pathname, status: 0 };
      tokenRequests.push(record);
      try {
        await handleToken(req, res, token[1], record);
        record.status = 200;
      } catch (error) {
        if (!(error instanceof EntraError)) throw error;
        record.status = error.status;
        record.error = `AADSTS${error.aadsts}`;
        sendJson(res, error.status, error.body());
      }
    } else {
      sendJson(res, 404, { error: 'not_found', error_description: `No Entra endpoint at ${url.pathname}` });
    }
  }, tls);

  // IMDS: GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=<res>[&client_id=<id>] with `Metadata: true`.
  const imds: RunningServer = await startServer((req, res) => {
    const url = requestUrl(req);
    const clientId = url.searchParams.get('client_id') ?? undefined;
    const record: EntraTokenRequest = {
      host: req.headers.host ?? '', path: url.pathname, clientId, grantType: 'managed_identity',
      scope: url.searchParams.get('resource') ?? undefined, status: 0,
    };
    tokenRequests.push(record);
    const refuse = (status: number, error: string, description: string) => {
      record.status = status;
      record.error = error;
      sendJson(res, status, { error, error_description: description });
    };
    if (url.pathname !== '/metadata/identity/oauth2/token') return refuse(404, 'not_found', `No IMDS endpoint at ${url.pathname}`);
    if (req.method !== 'GET') return refuse(405, 'invalid_request', 'Only GET is supported');
    if (req.headers.metadata !== 'true') return refuse(400, 'invalid_request', 'Required metadata header not specified');
    if (!url.searchParams.get('api-version')) return refuse(400, 'invalid_request', "Required query variable 'api-version' is missing");
    const resource = url.searchParams.get('resource');
    if (!resource) return refuse(400, 'invalid_request', "Required query variable 'resource' is missing");
    const identity = clientId === undefined ? systemAssignedIdentity : managedIdentities.get(clientId);
    if (!identity) return refuse(400, 'invalid_request', 'Identity not found');
    record.credentialType = 'managed_identity';
    // IMDS keeps the resource as asked (trailing slash and all) as the audience.
    const { token, claims } = issueAccessToken(identity, resource, 'managed_identity');
    record.status = 200;
    // IMDS sends every field as a string.
    sendJson(res, 200, {
      access_token: token,
      client_id: identity.clientId,
      expires_in: String(standIn.accessTokenLifetimeSeconds),
      expires_on: String(claims.exp),
      ext_expires_in: String(standIn.accessTokenLifetimeSeconds),
      not_before: String(claims.nbf),
      resource,
      token_type: 'Bearer',
    });
  });

  const tokenIssuer = await createJwtIssuer(`${server.url}/${tenantId}/v2.0`, keyPair);
  standIn.url = server.url;
  standIn.authorityUrl = `${server.url}/`;
  standIn.imdsUrl = imds.url;
  return standIn;
}
