// ACR token server stand-in: what a real distribution registry trusts for token auth, with ACR's
// endpoints (Azure/acr docs/AAD-OAuth.md):
//   POST /oauth2/exchange  Entra access token → ACR refresh token
//   POST /oauth2/token     refresh_token or password grant → registry access token
//   GET  /oauth2/token     Basic auth (docker-style) → registry access token
// Access tokens are JWTs in the Docker token format (iss, aud = service, access [{type,name,actions}]),
// signed with a key whose certificate is the registry's `rootcertbundle`; the header carries that
// certificate as `x5c`, which distribution 2.8 checks against the bundle.
import { X509Certificate, createPrivateKey, randomUUID, timingSafeEqual, type KeyObject } from 'node:crypto';
import type * as http from 'node:http';
import type { TestCa } from './ca.js';
import type { EntraStandIn } from './entra.js';
import { basicCredentials, readForm, requestUrl, sendJson, startServer } from './http.js';
import { JwtError, nowSeconds, signJwt, verifyJwt, type IssuedToken, type JwtClaims } from './jwt.js';

/** `pull` = AcrPull; `push` = AcrPush (pull + push); `admin` = the admin user (also delete and the catalog). */
export type AcrRole = 'pull' | 'push' | 'admin';

export interface AcrGrantOptions {
  /** Repositories this identity may touch, like a token's scope map; default all. */
  repositories?: string[];
}

/** The user name that makes the password an ACR refresh token (what `helm registry login` and docker use). */
export const ACR_REFRESH_TOKEN_USERNAME = '00000000-0000-0000-0000-000000000000';
export const ACR_ENTRA_AUDIENCE = 'https://containerregistry.azure.net';
export const ARM_AUDIENCE = 'https://management.azure.com';
/** The `iss` of ACR's tokens; the registry's `auth.token.issuer` must say the same. */
export const ACR_TOKEN_ISSUER = 'Azure Container Registry';

export interface AcrTokenRequest {
  method: string;
  /** `/oauth2/exchange` or `/oauth2/token`. */
  path: string;
  grantType?: string;
  service?: string;
  scopes: string[];
  /** The identity the request authenticated as: an Entra `oid` or a user name. */
  subject?: string;
  status: number;
  error?: string;
}

export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

export interface StartAcrTokenServerOptions {
  ca: TestCa;
  entra: EntraStandIn;
  /** The tenant whose tokens this registry accepts; default `entra.tenantId`. */
  tenantId?: string;
  /**
   * IPv4 address to listen on and to name in the certificate; default 127.0.0.1. A registry on a
   * non-loopback address needs its realm there too: oras-go (helm) refuses a loopback or private
   * realm host unless it is the registry's own, as real ACR's realm is its login server.
   */
  address?: string;
}

export interface AcrTokenServer {
  /** `https://<address>:<port>`; the registry's realm is `${url}/oauth2/token`. */
  url: string;
  realm: string;
  issuer: string;
  /** PEM certificate of the signing key: the registry's `rootcertbundle`. */
  rootCertPath: string;
  /** Grants an Entra principal (by object id) a role. */
  addPrincipal(objectId: string, role: AcrRole, options?: AcrGrantOptions): void;
  /** An admin user or repository-scoped token: user name and password with a role. */
  addUser(username: string, password: string, role: AcrRole, options?: AcrGrantOptions): void;
  /** Services (registry `host:port`) this server issues tokens for; startRegistry registers its own. */
  registerService(service: string): void;
  /** ARM-audience Entra tokens are accepted only while this is on (ACR's azureADAuthenticationAsArmPolicy). Default false. */
  armAudienceAccepted: boolean;
  /** Lifetime of access tokens issued from now on. Default 4500 (75 min, like ACR). Distribution allows 60 s of skew. */
  accessTokenLifetimeSeconds: number;
  /** Lifetime of refresh tokens issued from now on. Default 10800 (3 h). */
  refreshTokenLifetimeSeconds: number;
  requests: AcrTokenRequest[];
  /** Refresh tokens (claim `grant_type: refresh_token`) and access tokens (claim `access`). */
  issuedTokens: IssuedToken[];
  /** Every user password registered, for leak scans. */
  userPasswords(): string[];
  stop(): Promise<void>;
}

const ROLE_ACTIONS: Record<AcrRole, string[]> = {
  pull: ['pull'],
  push: ['pull', 'push'],
  admin: ['pull', 'push', 'delete', '*'],
};

interface Grant {
  role: AcrRole;
  repositories?: string[];
}

/** ACR answers token errors as `{"errors":[{"code","message"}]}` like the registry API. */
class AcrError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Parses a Docker scope `type:name:actions`. The name may itself hold colons (`repository:host:5000/x:pull`),
 * so type ends at the first colon and actions start after the last one.
 */
export function parseScope(scope: string): AccessEntry | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',').filter(Boolean) };
}

function constantTimeEquals(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

export async function startAcrTokenServer(options: StartAcrTokenServerOptions): Promise<AcrTokenServer> {
  const { entra } = options;
  const tenantId = options.tenantId ?? entra.tenantId;
  const [tls, signing] = await Promise.all([
    options.ca.issue(`acr-token-server-${randomUUID()}`, [...new Set([options.address ?? '127.0.0.1', '127.0.0.1', 'localhost'])]),
    options.ca.issue(`acr-token-signing-${randomUUID()}`, [], { keyType: 'rsa' }),
  ]);
  const signingKey: KeyObject = createPrivateKey(signing.keyPem);
  const signingCert = new X509Certificate(signing.certPem);
  const x5c = [signingCert.raw.toString('base64')];

  const principals = new Map<string, Grant>();
  const users = new Map<string, Grant & { password: string }>();
  const services = new Set<string>();
  const requests: AcrTokenRequest[] = [];
  const issuedTokens: IssuedToken[] = [];

  function issue(claims: JwtClaims, lifetimeSeconds: number): string {
    const now = nowSeconds();
    const full: JwtClaims = { jti: randomUUID(), iss: ACR_TOKEN_ISSUER, iat: now, nbf: now, exp: now + lifetimeSeconds, ...claims };
    const token = signJwt(full, signingKey, { x5c });
    issuedTokens.push({ token, claims: full });
    return token;
  }

  function requireService(service: string | null): string {
    if (!service) throw new AcrError(400, 'UNSUPPORTED', 'service is required');
    if (!services.has(service)) throw new AcrError(400, 'UNSUPPORTED', `service ${service} is not this registry`);
    return service;
  }

  /** Returns the subject of a refresh token this server issued for `service`. */
  function refreshTokenSubject(refreshToken: string, service: string): string {
    try {
      const { claims } = verifyJwt(refreshToken, signingCert.publicKey, { issuer: ACR_TOKEN_ISSUER, audience: service });
      if (claims.grant_type !== 'refresh_token' || typeof claims.sub !== 'string') throw new JwtError('not a refresh token');
      return claims.sub;
    } catch (error) {
      throw new AcrError(401, 'UNAUTHORIZED', `invalid refresh token: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  function passwordSubject(username: string, password: string, service: string): { subject: string; grant?: Grant } {
    if (username === ACR_REFRESH_TOKEN_USERNAME) {
      const subject = refreshTokenSubject(password, service);
      return { subject, grant: principals.get(subject) };
    }
    const user = users.get(username);
    if (!user || !constantTimeEquals(user.password, password)) {
      throw new AcrError(401, 'UNAUTHORIZED', 'authentication required, visit https://aka.ms/acr/authorization for more information.');
    }
    return { subject: username, grant: user };
  }

  /** Trims each requested scope to what the grant allows; an identity with no role gets a token with no access, as ACR does. */
  function allowedAccess(scopes: string[], grant: Grant | undefined): AccessEntry[] {
    const access: AccessEntry[] = [];
    for (const scope of scopes) {
      const requested = parseScope(scope);
      if (!requested || !grant) continue;
      let actions: string[] = [];
      if (requested.type === 'repository') {
        const inScope = grant.repositories === undefined || grant.repositories.includes(requested.name);
        actions = inScope ? requested.actions.filter((action) => ROLE_ACTIONS[grant.role].includes(action)) : [];
      } else if (requested.type === 'registry' && requested.name === 'catalog' && grant.role === 'admin') {
        actions = requested.actions.filter((action) => action === '*');
      }
      if (actions.length > 0) access.push({ type: requested.type, name: requested.name, actions });
    }
    return access;
  }

  function accessToken(subject: string, service: string, scopes: string[], grant: Grant | undefined): string {
    return issue({ sub: subject, aud: service, access: allowedAccess(scopes, grant) }, standIn.accessTokenLifetimeSeconds);
  }

  async function handleExchange(req: http.IncomingMessage, res: http.ServerResponse, record: AcrTokenRequest): Promise<void> {
    const form = await readForm(req);
    record.grantType = form.get('grant_type') ?? undefined;
    record.service = form.get('service') ?? undefined;
    if (record.grantType !== 'access_token') throw new AcrError(400, 'UNSUPPORTED', `grant_type ${record.grantType ?? '(none)'} is not supported; use access_token`);
    const service = requireService(form.get('service'));
    const entraToken = form.get('access_token');
    if (!entraToken) throw new AcrError(400, 'UNSUPPORTED', 'access_token is required');
    let claims: JwtClaims;
    try {
      claims = entra.verifyAccessToken(entraToken);
    } catch (error) {
      throw new AcrError(401, 'UNAUTHORIZED', `invalid Azure AD access token: ${error instanceof Error ? error.message : String(error)}`);
    }
    const audience = String(claims.aud).replace(/\/$/, '');
    if (audience !== ACR_ENTRA_AUDIENCE && !(standIn.armAudienceAccepted && audience === ARM_AUDIENCE)) {
      throw new AcrError(401, 'UNAUTHORIZED', `Azure AD access token audience ${String(claims.aud)} is not accepted; request scope ${ACR_ENTRA_AUDIENCE}/.default`);
    }
    const requestedTenant = form.get('tenant');
    if (claims.tid !== tenantId || (requestedTenant !== null && requestedTenant !== tenantId)) {
      throw new AcrError(401, 'UNAUTHORIZED', `Azure AD access token is for tenant ${String(claims.tid)}, the registry is in tenant ${tenantId}`);
    }
    if (typeof claims.oid !== 'string') throw new AcrError(401, 'UNAUTHORIZED', 'Azure AD access token has no oid claim');
    record.subject = claims.oid;
    const refreshToken = issue({ sub: claims.oid, aud: service, grant_type: 'refresh_token', tenant: tenantId }, standIn.refreshTokenLifetimeSeconds);
    sendJson(res, 200, { refresh_token: refreshToken });
  }

  async function handleTokenPost(req: http.IncomingMessage, res: http.ServerResponse, record: AcrTokenRequest): Promise<void> {
    const form = await readForm(req);
    record.grantType = form.get('grant_type') ?? undefined;
    record.service = form.get('service') ?? undefined;
    record.scopes = form.getAll('scope').flatMap((scope) => scope.split(' ')).filter(Boolean);
    const service = requireService(form.get('service'));
    let subject: string;
    let grant: Grant | undefined;
    if (record.grantType === 'refresh_token') {
      subject = refreshTokenSubject(form.get('refresh_token') ?? '', service);
      grant = principals.get(subject);
    } else if (record.grantType === 'password') {
      ({ subject, grant } = passwordSubject(form.get('username') ?? '', form.get('password') ?? '', service));
    } else {
      throw new AcrError(400, 'UNSUPPORTED', `grant_type ${record.grantType ?? '(none)'} is not supported; use refresh_token or password`);
    }
    record.subject = subject;
    sendJson(res, 200, { access_token: accessToken(subject, service, record.scopes, grant) });
  }

  function handleTokenGet(req: http.IncomingMessage, res: http.ServerResponse, record: AcrTokenRequest): void {
    const url = requestUrl(req);
    record.service = url.searchParams.get('service') ?? undefined;
    record.scopes = url.searchParams.getAll('scope').flatMap((scope) => scope.split(' ')).filter(Boolean);
    const service = requireService(url.searchParams.get('service'));
    const credentials = basicCredentials(req);
    if (!credentials) throw new AcrError(401, 'UNAUTHORIZED', 'authentication required, visit https://aka.ms/acr/authorization for more information.');
    const { subject, grant } = passwordSubject(credentials.username, credentials.password, service);
    record.subject = subject;
    const token = accessToken(subject, service, record.scopes, grant);
    // The Docker token spec names the field `token`; OAuth2 clients read `access_token`.
    sendJson(res, 200, { token, access_token: token });
  }

  const server = await startServer(async (req, res) => {
    const url = requestUrl(req);
    const record: AcrTokenRequest = { method: req.method ?? '', path: url.pathname, scopes: [], status: 0 };
    requests.push(record);
    try {
      if (url.pathname === '/oauth2/exchange' && req.method === 'POST') await handleExchange(req, res, record);
      else if (url.pathname === '/oauth2/token' && req.method === 'POST') await handleTokenPost(req, res, record);
      else if (url.pathname === '/oauth2/token' && req.method === 'GET') handleTokenGet(req, res, record);
      else throw new AcrError(404, 'NOT_FOUND', `no token endpoint at ${req.method ?? ''} ${url.pathname}`);
      record.status = 200;
    } catch (error) {
      if (!(error instanceof AcrError)) throw error;
      record.status = error.status;
      record.error = error.message;
      const challenge = error.status === 401 ? { 'WWW-Authenticate': `Basic realm="${standIn.realm}"` } : {};
      req.resume();
      sendJson(res, error.status, { errors: [{ code: error.code, message: error.message }] }, challenge);
    }
  }, tls, options.address);

  const standIn: AcrTokenServer = {
    url: server.url,
    realm: `${server.url}/oauth2/token`,
    issuer: ACR_TOKEN_ISSUER,
    rootCertPath: signing.certPath,
    addPrincipal: (objectId, role, grantOptions = {}) => {
      principals.set(objectId, { role, repositories: grantOptions.repositories });
    },
    addUser: (username, password, role, grantOptions = {}) => {
      if (username === ACR_REFRESH_TOKEN_USERNAME) throw new Error(`${ACR_REFRESH_TOKEN_USERNAME} is reserved for refresh tokens`);
      users.set(username, { password, role, repositories: grantOptions.repositories });
    },
    registerService: (service) => {
      services.add(service);
    },
    armAudienceAccepted: false,
    accessTokenLifetimeSeconds: 4500,
    refreshTokenLifetimeSeconds: 10800,
    requests,
    issuedTokens,
    userPasswords: () => [...users.values()].map((user) => user.password),
    stop: () => server.stop(),
  };
  return standIn;
}
