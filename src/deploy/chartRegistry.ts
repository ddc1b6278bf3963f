// Registry logins for helm: an `oci://` chart in ACR is pulled with an ACR refresh token from the
// task's Entra identity, written where helm reads `helm registry login` results — never on argv.
import { writeFile } from 'node:fs/promises';
import { parseBearerChallenge } from '../acr/challenge.js';
import { RegistryTokenProvider } from '../acr/exchange.js';
import type { TokenCredential } from '../azure/entra.js';
import { InputError, UserError } from '../errors.js';
import { rejectTransient } from '../http/status.js';
import type { HttpTransport } from '../http/transport.js';
import type { SecretRegistry } from '../log.js';
import { retry } from '../retry.js';

/** The user name ACR expects with a refresh token as the password. */
export const ACR_REFRESH_TOKEN_USER = '00000000-0000-0000-0000-000000000000';

/** `oci://contoso.azurecr.io/helm/web` → `contoso.azurecr.io`; undefined for a chart path. */
export function ociChartHost(chart: string): string | undefined {
  if (!chart.startsWith('oci://')) return undefined;
  const host = chart.slice('oci://'.length).split('/')[0];
  if (!host || !chart.slice('oci://'.length).includes('/')) throw new InputError('chart', `'${chart}' names no repository; write oci://<registry>/<repository>/<chart>.`);
  return host;
}

/**
 * Writes a docker config.json (mode 0600) for helm. For an OCI chart and an Entra identity it
 * holds the registry's refresh token; otherwise it is empty, which lets helm pull anonymously.
 */
export async function writeRegistryConfig(path: string, chart: string, entra: TokenCredential | undefined, http: HttpTransport, secrets: SecretRegistry): Promise<void> {
  const host = ociChartHost(chart);
  const auths: Record<string, { auth: string }> = {};
  if (host && entra) {
    const { status, challenge } = await retry(async () => {
      const response = await rejectTransient(await http.send({ method: 'GET', url: `https://${host}/v2/` }), `${host} GET /v2/`);
      await response.discard();
      return { status: response.status, challenge: parseBearerChallenge(response.headers['www-authenticate']) };
    });
    if (status === 401 && !challenge) throw new UserError(`${host} asks for no Bearer login; it is not an Azure Container Registry this task can log in to with Entra.`);
    // Any other answer than a challenge means the registry lets anyone pull: helm needs no login.
    if (status === 401 && challenge) {
      const refreshToken = await new RegistryTokenProvider({ kind: 'entra', credential: entra }, http, secrets).refreshTokenFor(challenge);
      const auth = Buffer.from(`${ACR_REFRESH_TOKEN_USER}:${refreshToken}`).toString('base64');
      secrets.register(auth);
      auths[host] = { auth };
    }
  }
  await writeFile(path, JSON.stringify({ auths }), { mode: 0o600 });
}
