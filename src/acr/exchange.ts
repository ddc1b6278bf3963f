// ACR's token exchange (Azure/acr docs/AAD-OAuth.md): an Entra access token becomes an ACR refresh
// token at `/oauth2/exchange`, and the refresh token becomes access tokens for scopes at
// `/oauth2/token`. Both endpoints come from the challenge's realm, never from the login server name,
// because the realm is what the registry trusts.
import { decodeJwtClaims } from '../azure/jwt.js';
import type { TokenCredential } from '../azure/entra.js';
import { SingleFlightCache } from '../concurrency.js';
import type { HttpResponse, HttpTransport } from '../http/transport.js';
import type { SecretRegistry } from '../log.js';
import type { BearerChallenge } from '../oci/challenge.js';
import { AccessTokenCache, readTokenResponse, type ExpiringToken, type RegistryTokenProvider } from '../oci/tokens.js';

/** The Entra scope of ACR's data plane. ARM's audience only works while the registry allows it by policy. */
const ACR_ENTRA_SCOPE = 'https://containerregistry.azure.net/.default';

const REFRESH_TOKEN_MARGIN_MS = 5 * 60_000;

/**
 * Turns registry challenges into bearer tokens for an Entra identity. Access tokens are cached per
 * (realm, service, scopes) and the refresh token per (realm, service), each minted once however many
 * requests ask at the same moment; `invalidate` drops the access tokens after the registry refused one.
 */
export class AcrTokenExchange implements RegistryTokenProvider {
  private readonly accessTokens = new AccessTokenCache();
  private readonly refreshTokens = new SingleFlightCache<ExpiringToken>((token) => token.expiresOnMs - REFRESH_TOKEN_MARGIN_MS > Date.now());

  constructor(
    private readonly credential: TokenCredential,
    private readonly http: HttpTransport,
    private readonly secrets: SecretRegistry,
  ) {}

  /**
   * Starts the Entra token request before the registry's challenge is known: the two are separate
   * round trips, and the token is needed right after. The real request shares this one, and reports its failure.
   */
  warmUp(): void {
    this.credential.getToken(ACR_ENTRA_SCOPE).catch(() => undefined);
  }

  accessToken(challenge: BearerChallenge, scopes: readonly string[]): Promise<string> {
    return this.accessTokens.get(challenge, scopes, () => this.mintAccessToken(challenge, scopes));
  }

  /**
   * The ACR refresh token for the challenge's registry: what `helm registry login` stores under the
   * `00000000-0000-0000-0000-000000000000` user, for tools that log in themselves.
   */
  async refreshTokenFor(challenge: BearerChallenge): Promise<string> {
    return (await this.refreshToken(challenge)).token;
  }

  invalidate(challenge: BearerChallenge): void {
    this.accessTokens.forget(challenge);
  }

  private async mintAccessToken(challenge: BearerChallenge, scopes: readonly string[]): Promise<ExpiringToken> {
    const refreshToken = await this.refreshToken(challenge);
    const form = new URLSearchParams({ grant_type: 'refresh_token', service: challenge.service, refresh_token: refreshToken.token });
    for (const scope of scopes) form.append('scope', scope);
    const response = await this.post(new URL('/oauth2/token', challenge.realm), form);
    if (response.status !== 401) return readTokenResponse(response, 'access_token', 'the ACR access token request', this.secrets);
    // The refresh token was revoked or expired early: start over from Entra once.
    this.refreshTokens.forget((key) => key === refreshKey(challenge));
    form.set('refresh_token', (await this.refreshToken(challenge)).token);
    return readTokenResponse(await this.post(new URL('/oauth2/token', challenge.realm), form), 'access_token', 'the ACR access token request', this.secrets);
  }

  private refreshToken(challenge: BearerChallenge): Promise<ExpiringToken> {
    return this.refreshTokens.get(refreshKey(challenge), async () => {
      const entra = await this.credential.getToken(ACR_ENTRA_SCOPE);
      const tenant = decodeJwtClaims(entra.token)?.tid;
      const form = new URLSearchParams({ grant_type: 'access_token', service: challenge.service, access_token: entra.token });
      if (typeof tenant === 'string') form.set('tenant', tenant);
      return readTokenResponse(await this.post(new URL('/oauth2/exchange', challenge.realm), form), 'refresh_token', 'the ACR token exchange', this.secrets);
    });
  }

  private post(url: URL, form: URLSearchParams): Promise<HttpResponse> {
    return this.http.send({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
      endpoint: 'the ACR token server',
    });
  }
}

function refreshKey(challenge: BearerChallenge): string {
  return `${challenge.realm} ${challenge.service}`;
}
