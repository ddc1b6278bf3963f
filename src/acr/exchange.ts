import { AuthenticationError } from '../errors.js';
import { rejectTransient } from '../http/status.js';
import type { HttpResponse, HttpTransport } from '../http/transport.js';
import { decodeJwtClaims, jwtExpiryMs } from '../azure/jwt.js';
import type { SecretRegistry } from '../log.js';
import { retry } from '../http/retry.js';
import type { TokenCredential } from '../azure/entra.js';
import type { BearerChallenge } from '../oci/challenge.js';
import type { RegistryTokenProvider } from '../oci/tokens.js';

/** How the registry tasks prove who they are to the registry. */
export type RegistryIdentity =
  /** An Entra identity, traded for ACR tokens through `/oauth2/exchange`. */
  | { kind: 'entra'; credential: TokenCredential; audience?: string }
  /** ACR admin user or a repository-scoped token. */
  | { kind: 'basic'; username: string; password: string };

/** The Entra audience of ACR's data plane. ARM's audience only works while the registry allows it by policy. */
export const ACR_AUDIENCE = 'https://containerregistry.azure.net';

const ACCESS_TOKEN_MARGIN_MS = 60_000;
const REFRESH_TOKEN_MARGIN_MS = 5 * 60_000;

interface CachedToken {
  token: string;
  expiresOnMs: number;
}

/**
 * Turns registry challenges into bearer tokens. The token endpoints are derived from the
 * challenge's realm, never from the login server name, because the realm is what the registry
 * trusts. Access tokens are cached per (realm, service, scopes) and the ACR refresh token per
 * (realm, service); `invalidate` drops them after the registry refused one.
 */
export class AcrTokenExchange implements RegistryTokenProvider {
  private readonly accessTokens = new Map<string, Promise<CachedToken>>();
  private readonly refreshTokens = new Map<string, Promise<CachedToken>>();

  constructor(
    private readonly identity: RegistryIdentity,
    private readonly http: HttpTransport,
    private readonly secrets: SecretRegistry,
  ) {}

  /**
   * Starts the Entra token request before the registry's challenge is known: the two are separate
   * round trips, and the token is needed right after. A failure here is reported by the real request.
   */
  warmUp(): void {
    if (this.identity.kind === 'entra') this.identity.credential.getToken(this.entraScope()).catch(() => undefined);
  }

  async accessToken(challenge: BearerChallenge, scopes: string[]): Promise<string> {
    const key = `${challenge.realm} ${challenge.service} ${scopes.join(' ')}`;
    const cached = await this.accessTokens.get(key)?.catch(() => undefined);
    if (cached && cached.expiresOnMs - ACCESS_TOKEN_MARGIN_MS > Date.now()) return cached.token;
    const fresh = this.mintAccessToken(challenge, scopes);
    this.accessTokens.set(key, fresh);
    return (await fresh).token;
  }

  /**
   * The ACR refresh token for the challenge's registry, from the Entra flow: what `helm registry
   * login` stores under the `00000000-0000-0000-0000-000000000000` user, for tools that log in themselves.
   */
  async refreshTokenFor(challenge: BearerChallenge): Promise<string> {
    if (this.identity.kind !== 'entra') throw new Error('only Entra identities are exchanged for ACR refresh tokens');
    return (await this.refreshToken(challenge, this.identity)).token;
  }

  /** Forget every token for this realm: the registry said the one we sent is no longer good. */
  invalidate(challenge: BearerChallenge, { includingRefreshToken = false } = {}): void {
    for (const key of this.accessTokens.keys()) if (key.startsWith(`${challenge.realm} `)) this.accessTokens.delete(key);
    if (includingRefreshToken) this.refreshTokens.delete(`${challenge.realm} ${challenge.service}`);
  }

  private async mintAccessToken(challenge: BearerChallenge, scopes: string[]): Promise<CachedToken> {
    if (this.identity.kind === 'basic') return this.basicAccessToken(this.identity, challenge, scopes);
    const refreshToken = await this.refreshToken(challenge, this.identity);
    const form = new URLSearchParams({ grant_type: 'refresh_token', service: challenge.service, refresh_token: refreshToken.token });
    for (const scope of scopes) form.append('scope', scope);
    const response = await this.post(new URL('/oauth2/token', challenge.realm), form);
    if (response.status === 401) {
      // The refresh token was revoked or expired early: start over from Entra once.
      await response.discard();
      this.invalidate(challenge, { includingRefreshToken: true });
      const renewed = await this.refreshToken(challenge, this.identity);
      form.set('refresh_token', renewed.token);
      return this.readToken(await this.post(new URL('/oauth2/token', challenge.realm), form), 'access_token', 'the ACR access token request');
    }
    return this.readToken(response, 'access_token', 'the ACR access token request');
  }

  private refreshToken(challenge: BearerChallenge, identity: Extract<RegistryIdentity, { kind: 'entra' }>): Promise<CachedToken> {
    const key = `${challenge.realm} ${challenge.service}`;
    const existing = this.refreshTokens.get(key);
    const usable = existing?.then((token) => (token.expiresOnMs - REFRESH_TOKEN_MARGIN_MS > Date.now() ? token : undefined)).catch(() => undefined);
    const next = (async () => (await usable) ?? this.exchange(challenge, identity))();
    this.refreshTokens.set(key, next);
    return next;
  }

  private async exchange(challenge: BearerChallenge, identity: Extract<RegistryIdentity, { kind: 'entra' }>): Promise<CachedToken> {
    const entra = await identity.credential.getToken(this.entraScope());
    const tenant = decodeJwtClaims(entra.token)?.tid;
    const form = new URLSearchParams({ grant_type: 'access_token', service: challenge.service, access_token: entra.token });
    if (typeof tenant === 'string') form.set('tenant', tenant);
    return this.readToken(await this.post(new URL('/oauth2/exchange', challenge.realm), form), 'refresh_token', 'the ACR token exchange');
  }

  private entraScope(): string {
    return `${(this.identity.kind === 'entra' && this.identity.audience) || ACR_AUDIENCE}/.default`;
  }

  /** Docker's flow: GET the realm with Basic credentials. */
  private async basicAccessToken(identity: Extract<RegistryIdentity, { kind: 'basic' }>, challenge: BearerChallenge, scopes: string[]): Promise<CachedToken> {
    const url = new URL(challenge.realm);
    if (challenge.service) url.searchParams.set('service', challenge.service);
    for (const scope of scopes) url.searchParams.append('scope', scope);
    const basic = Buffer.from(`${identity.username}:${identity.password}`).toString('base64');
    this.secrets.register(basic);
    const response = await retry(async () =>
      rejectTransient(await this.http.send({ method: 'GET', url, headers: { authorization: `Basic ${basic}`, accept: 'application/json' } }), 'registry token server'),
    );
    return this.readToken(response, 'token', `the registry login of user ${identity.username}`);
  }

  private post(url: URL, form: URLSearchParams): Promise<HttpResponse> {
    return retry(async () =>
      rejectTransient(
        await this.http.send({ method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: form.toString() }),
        'registry token server',
      ),
    );
  }

  private async readToken(response: HttpResponse, field: 'access_token' | 'refresh_token' | 'token', what: string): Promise<CachedToken> {
    const text = await response.text();
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // Not JSON: the status line below says enough.
    }
    const token = body[field] ?? (field === 'token' ? body.access_token : undefined);
    if (response.status === 200 && typeof token === 'string' && token) {
      this.secrets.register(token);
      return { token, expiresOnMs: jwtExpiryMs(token, Date.now() + 10 * 60_000) };
    }
    const detail = typeof body.error_description === 'string' ? body.error_description : typeof body.error === 'string' ? body.error : text.slice(0, 200);
    const hint =
      response.status === 401 || response.status === 403
        ? ' Check the credentials of the connection and that the identity has a role on the registry (AcrPush to push).'
        : '';
    throw new AuthenticationError(`The registry refused ${what} (HTTP ${response.status}${detail ? `: ${detail.trim()}` : ''}).${hint}`);
  }
}
