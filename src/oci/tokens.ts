import type { BearerChallenge } from './challenge.js';

/**
 * Where the registry client gets bearer tokens for a challenge (distribution "token authentication
 * specification"). The client knows nothing of identities: `acr/` implements this with ACR's token
 * exchange or a registry user's password.
 */
export interface RegistryTokenProvider {
  /** A token for `scopes` (e.g. `repository:team/app:pull,push`) at the challenge's realm. */
  accessToken(challenge: BearerChallenge, scopes: string[]): Promise<string>;
  /** Forget tokens of this realm: the registry refused the one we sent. */
  invalidate(challenge: BearerChallenge): void;
}
