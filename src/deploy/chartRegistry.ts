// Registry logins for helm: an `oci://` chart in ACR is pulled with an ACR refresh token from the
// task's Entra identity, written where helm reads `helm registry login` results — never on argv.
import { writeDockerConfig, type RegistryLogin } from '../acr/dockerConfig.js';
import { AcrTokenExchange } from '../acr/exchange.js';
import type { TokenCredential } from '../azure/entra.js';
import { InputError } from '../errors.js';
import type { HttpTransport } from '../http/transport.js';
import { silentLogger, type SecretRegistry } from '../log.js';
import { RegistryClient } from '../oci/registry.js';

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
 * Returns the hosts helm will talk to for the chart: the registry and, when known, its token server.
 */
export async function writeRegistryConfig(path: string, chart: string, entra: TokenCredential | undefined, http: HttpTransport, secrets: SecretRegistry): Promise<string[]> {
  const host = ociChartHost(chart);
  const logins = new Map<string, RegistryLogin>();
  const hosts = host ? [host] : [];
  if (host && entra) {
    const tokens = new AcrTokenExchange(entra, http, secrets);
    const challenge = await new RegistryClient({ host, http, tokens, logger: silentLogger }).challenge();
    // No challenge means the registry lets anyone pull: helm needs no login.
    if (challenge) {
      logins.set(host, { identityToken: await tokens.refreshTokenFor(challenge) });
      hosts.push(new URL(challenge.realm).host);
    }
  }
  await writeDockerConfig(path, logins, secrets);
  return hosts;
}
