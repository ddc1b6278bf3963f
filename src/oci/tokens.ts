// Bearer tokens for registry requests (distribution "Token Authentication Specification" and its
// OAuth2 variant). The client asks through RegistryTokenProvider and knows nothing of identities;
// acr/ implements it with ACR's token exchange, and RealmTokenProvider here is the plain flow every
// registry serves: GET the realm, with a registry user's Basic credentials or anonymously.
import { decodeJwtClaims } from '../azure/jwt.js';
import { SingleFlightCache } from '../concurrency.js';
import { AuthenticationError } from '../errors.js';
import { errorDetail, type HttpResponse, type HttpTransport } from '../http/transport.js';
import type { SecretRegistry } from '../log.js';
import type { BearerChallenge } from './challenge.js';

export interface RegistryTokenProvider {
  /**
   * A token for `scopes` at the challenge's realm, e.g. `repository:team/app:pull,push`, or for a
   * cross-repository mount `repository:base/node:pull` and `repository:team/app:pull,push` at once.
   */
  accessToken(challenge: BearerChallenge, scopes: readonly string[]): Promise<string>;
  /** Forget tokens of this realm: the registry refused the one we sent. */
  invalidate(challenge: BearerChallenge): void;
}

export interface ExpiringToken {
  token: string;
  expiresOnMs: number;
}

// Renew this long before expiry, so a token never dies in the middle of a long upload request.
const ACCESS_TOKEN_MARGIN_MS = 60_000;

/** Access tokens by realm, service and scopes; each minted once, however many requests start together. */
export class AccessTokenCache {
  private readonly cache = new SingleFlightCache<ExpiringToken>((token) => token.expiresOnMs - ACCESS_TOKEN_MARGIN_MS > Date.now());

  async get(challenge: BearerChallenge, scopes: readonly string[], mint: () => Promise<ExpiringToken>): Promise<string> {
    return (await this.cache.get(`${challenge.realm} ${challenge.service} ${[...scopes].sort().join(' ')}`, mint)).token;
  }

  forget(challenge: BearerChallenge): void {
    this.cache.forget((key) => key.startsWith(`${challenge.realm} `));
  }
}

/**
 * The token flow of the distribution token specification: `GET <realm>?service=…&scope=…`, with
 * Basic credentials (ACR's admin user or a repository-scoped token, any registry's user) or, with
 * none, anonymously (what public registries hand out for pulls).
 */
export class RealmTokenProvider implements RegistryTokenProvider {
  private readonly tokens = new AccessTokenCache();

  constructor(
    private readonly http: HttpTransport,
    private readonly secrets: SecretRegistry,
    private readonly credentials?: { username: string; password: string },
  ) {}

  accessToken(challenge: BearerChallenge, scopes: readonly string[]): Promise<string> {
    return this.tokens.get(challenge, scopes, async () => {
      const url = new URL(challenge.realm);
      if (challenge.service) url.searchParams.set('service', challenge.service);
      for (const scope of scopes) url.searchParams.append('scope', scope);
      const headers: Record<string, string> = { accept: 'application/json' };
      if (this.credentials) {
        const basic = Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64');
        this.secrets.register(basic);
        headers.authorization = `Basic ${basic}`;
      }
      const response = await this.http.send({ method: 'GET', url, headers, endpoint: 'the registry token server' });
      const what = this.credentials ? `the registry login of user ${this.credentials.username}` : 'an anonymous registry token';
      return readTokenResponse(response, 'token', what, this.secrets);
    });
  }

  invalidate(challenge: BearerChallenge): void {
    this.tokens.forget(challenge);
  }
}

/**
 * Reads a token server's answer: the token registered as a secret before anything else sees it,
 * its expiry from `expires_in` or the JWT itself; any other answer becomes one AuthenticationError.
 * `token` also accepts `access_token`, the OAuth2 name of the same field.
 */
export async function readTokenResponse(response: HttpResponse, field: 'token' | 'access_token' | 'refresh_token', what: string, secrets: SecretRegistry): Promise<ExpiringToken> {
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // Not JSON: the status line below says enough.
  }
  const token = body[field] ?? (field === 'token' ? body.access_token : undefined);
  if (response.status === 200 && typeof token === 'string' && token) {
    secrets.register(token);
    return { token, expiresOnMs: expiryOf(token, body.expires_in) };
  }
  const detail = errorDetail(text);
  const hint =
    response.status === 401 || response.status === 403
      ? ' Check the credentials of the connection and that the identity has a role on the registry (AcrPush to push).'
      : '';
  throw new AuthenticationError(`The registry refused ${what} (HTTP ${response.status}${detail ? `: ${detail}` : ''}).${hint}`);
}

/** `expires_in` when the server sends it, else the JWT's `exp`, else the specification's default of 60 s. */
function expiryOf(token: string, expiresIn: unknown): number {
  if (typeof expiresIn === 'number' && expiresIn > 0) return Date.now() + expiresIn * 1000;
  const exp = decodeJwtClaims(token)?.exp;
  return typeof exp === 'number' ? exp * 1000 : Date.now() + 60_000;
}
