// The whole registry environment in one call: test CA, Entra ID, Azure DevOps and the ACR token server
// stand-ins, the real registry behind them and, on request, the fault proxy in front of it. Plus the
// files and arguments that let skopeo, oras and helm verify what a test pushed.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ACR_ENTRA_AUDIENCE, ACR_REFRESH_TOKEN_USERNAME, startAcrTokenServer, type AcrGrantOptions, type AcrRole, type AcrTokenServer } from './acr.js';
import { createTestCa, type TestCa } from './ca.js';
import { startDevOps, type DevOpsStandIn } from './devops.js';
import { startEntra, type EntraStandIn } from './entra.js';
import { startFaultProxy, type FaultProxy } from './faults.js';
import { formBody, request } from './http.js';
import { startRegistry, type RunningRegistry } from './registry.js';

/** Where scripts/install-test-tools.sh puts the clients it builds from Go modules. */
const TEST_TOOLS_BIN_DIR = fileURLToPath(new URL('../../.cache/bin', import.meta.url));

/** Path of a tool scripts/install-test-tools.sh builds from its Go module (skopeo comes from Debian, on PATH). */
export function testToolPath(name: 'helm' | 'oras' | 'trivy' | 'trivy-db-fixture'): string {
  return path.join(TEST_TOOLS_BIN_DIR, name);
}

export interface RegistryClientTrust {
  /** The registry host the auth file names (the proxy's when the client goes through it). */
  host: string;
  /** The test CA as PEM (`--ca-file` of oras and helm). */
  caFile: string;
  /** A folder holding `ca.crt` (skopeo's `--cert-dir`). */
  certDir: string;
  /** docker config.json-format auth file, mode 0600 (skopeo `--authfile`, oras/helm `--registry-config`). */
  authFile: string;
  /** Environment for running the clients: helm's cache, config and data homes in this client's own folder, not ~. */
  toolEnv: NodeJS.ProcessEnv;
}

/** Arguments that make each verifying client trust the test CA and use the auth file. */
export const registryTrustArgs = {
  /** For `skopeo inspect`, `list-tags`, `delete`. */
  skopeo: (trust: RegistryClientTrust): string[] => ['--cert-dir', trust.certDir, '--authfile', trust.authFile],
  /** For the registry side of `skopeo copy docker://… …`. */
  skopeoSource: (trust: RegistryClientTrust): string[] => ['--src-cert-dir', trust.certDir, '--src-authfile', trust.authFile],
  /** For the registry side of `skopeo copy … docker://…`. */
  skopeoDestination: (trust: RegistryClientTrust): string[] => ['--dest-cert-dir', trust.certDir, '--dest-authfile', trust.authFile],
  /** For oras commands that talk to a registry. */
  oras: (trust: RegistryClientTrust): string[] => ['--ca-file', trust.caFile, '--registry-config', trust.authFile],
  /** For `helm pull|push|show|template oci://…` (`--registry-config` is a global flag). */
  helm: (trust: RegistryClientTrust): string[] => ['--ca-file', trust.caFile, '--registry-config', trust.authFile],
};

/** Writes a docker config.json-format auth file (what skopeo, oras and helm all read), owner-only. */
export async function writeRegistryAuthFile(authFile: string, host: string, username: string, password: string): Promise<void> {
  const auth = Buffer.from(`${username}:${password}`).toString('base64');
  await writeFile(authFile, JSON.stringify({ auths: { [host]: { auth } } }), { mode: 0o600 });
}

export interface ServicePrincipal {
  clientId: string;
  clientSecret: string;
  objectId: string;
}

export interface ClientTrustOptions extends AcrGrantOptions {
  /** Default `push`. */
  role?: AcrRole;
  /** Default: the proxy's host when there is one, else the registry's. */
  host?: string;
}

export interface AcrEnvironment {
  /** Temp dir holding certificates, registry storage and client files; removed by stop(). */
  dir: string;
  ca: TestCa;
  entra: EntraStandIn;
  devops: DevOpsStandIn;
  tokenServer: AcrTokenServer;
  registry: RunningRegistry;
  proxy?: FaultProxy;
  /** Where clients should push: the proxy's host when there is one, else the registry's. */
  registryHost: string;
  /** An Entra app with a client secret, granted `role` on the registry. */
  addServicePrincipal(role: AcrRole, options?: AcrGrantOptions): ServicePrincipal;
  /**
   * The documented flow for a principal: Entra client credentials, then `/oauth2/exchange`; returns
   * the ACR refresh token for `service` (default this environment's registry; another registry
   * started on the same token server has its own).
   */
  acrRefreshToken(principal: ServicePrincipal, service?: string): Promise<string>;
  /**
   * Files for skopeo/oras/helm: a new principal with `role`, its ACR refresh token in an auth file
   * under the `00000000-…` user (what `helm registry login` stores), and the test CA.
   */
  createClientTrust(options?: ClientTrustOptions): Promise<RegistryClientTrust & ServicePrincipal>;
  /** The same files for given credentials (an admin user, a repository-scoped token, or the `00000000-…` user with a refresh token). */
  clientTrustFor(credentials: { username: string; password: string; host?: string }): Promise<RegistryClientTrust>;
  /** Every secret and token issued so far (client secrets, passwords, Entra/OIDC/ACR tokens, System.AccessToken), for leak scans. */
  secrets(): string[];
  stop(): Promise<void>;
}

export interface StartAcrEnvironmentOptions {
  /** Put the fault proxy in front of the registry. Default false. */
  withFaultProxy?: boolean;
  /**
   * Serve the token endpoints on the registry's origin, as ACR does (the realm is then the proxy's
   * `/oauth2/token`; implies the proxy). Trivy refuses a loopback realm on another host:port.
   * Default false.
   */
  tokenServerOnRegistryOrigin?: boolean;
  /** Relative upload Locations, as ACR sends them; see StartRegistryOptions. Default false. */
  relativeUrls?: boolean;
}

export async function startAcrEnvironment(options: StartAcrEnvironmentOptions = {}): Promise<AcrEnvironment> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'acr-env-'));
  const stoppers: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    const results = await Promise.allSettled(stoppers.reverse().map((stop) => stop()));
    await rm(dir, { recursive: true, force: true });
    const failures = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failures.length > 0) throw new AggregateError(failures.map((failure) => failure.reason as unknown), 'stopping the ACR environment failed');
  };
  try {
    const ca = await createTestCa(path.join(dir, 'ca'));
    const [entra, devops] = await Promise.all([startEntra({ ca }), startDevOps({ ca })]);
    stoppers.push(() => entra.stop(), () => devops.stop());
    const tokenServer = await startAcrTokenServer({ ca, entra });
    stoppers.push(() => tokenServer.stop());
    // The proxy starts first when the registry's realm must name it.
    let registryUrl = '';
    const proxy =
      options.withFaultProxy || options.tokenServerOnRegistryOrigin
        ? await startFaultProxy({ ca, target: () => registryUrl, tokenServer: options.tokenServerOnRegistryOrigin ? tokenServer.url : undefined })
        : undefined;
    if (proxy) stoppers.push(() => proxy.stop());
    const realm = options.tokenServerOnRegistryOrigin ? `${proxy!.url}/oauth2/token` : undefined;
    const registry = await startRegistry({ ca, tokenServer, realm, dir: path.join(dir, 'registry'), relativeUrls: options.relativeUrls });
    stoppers.push(() => registry.stop());
    registryUrl = registry.url;
    const registryHost = proxy?.host ?? registry.host;

    const certDir = path.join(dir, 'client-certs');
    await mkdir(certDir, { mode: 0o700 });
    await writeFile(path.join(certDir, 'ca.crt'), ca.caCertPem);

    const environment: AcrEnvironment = {
      dir, ca, entra, devops, tokenServer, registry, proxy, registryHost,
      addServicePrincipal(role, grantOptions) {
        const clientId = randomUUID();
        const clientSecret = randomBytes(24).toString('base64url');
        const { objectId } = entra.addSecretClient(clientId, clientSecret);
        tokenServer.addPrincipal(objectId, role, grantOptions);
        return { clientId, clientSecret, objectId };
      },
      async acrRefreshToken(principal, service = registry.service) {
        const entraResponse = await request(`${entra.url}/${entra.tenantId}/oauth2/v2.0/token`, {
          method: 'POST', ca: ca.caCertPem,
          ...formBody({ grant_type: 'client_credentials', client_id: principal.clientId, client_secret: principal.clientSecret, scope: `${ACR_ENTRA_AUDIENCE}/.default` }),
        });
        if (entraResponse.status !== 200) throw new Error(`Entra stand-in refused the principal: ${entraResponse.status} ${entraResponse.body}`);
        const { access_token: accessToken } = JSON.parse(entraResponse.body) as { access_token: string };
        const exchange = await request(`${tokenServer.url}/oauth2/exchange`, {
          method: 'POST', ca: ca.caCertPem,
          ...formBody({ grant_type: 'access_token', service, tenant: entra.tenantId, access_token: accessToken }),
        });
        if (exchange.status !== 200) throw new Error(`ACR token server refused the exchange: ${exchange.status} ${exchange.body}`);
        return (JSON.parse(exchange.body) as { refresh_token: string }).refresh_token;
      },
      async createClientTrust({ role = 'push', host, ...grantOptions } = {}) {
        const principal = environment.addServicePrincipal(role, grantOptions);
        const refreshToken = await environment.acrRefreshToken(principal);
        const trust = await environment.clientTrustFor({ username: ACR_REFRESH_TOKEN_USERNAME, password: refreshToken, host });
        return { ...principal, ...trust };
      },
      async clientTrustFor({ username, password, host = registryHost }) {
        const clientDir = await mkdtemp(path.join(dir, 'client-'));
        const authFile = path.join(clientDir, 'auth.json');
        await writeRegistryAuthFile(authFile, host, username, password);
        const toolEnv = {
          ...process.env,
          HELM_CACHE_HOME: path.join(clientDir, 'helm-cache'),
          HELM_CONFIG_HOME: path.join(clientDir, 'helm-config'),
          HELM_DATA_HOME: path.join(clientDir, 'helm-data'),
        };
        return { host, caFile: ca.caCertPath, certDir, authFile, toolEnv };
      },
      secrets: () => [
        ...entra.clientSecrets(),
        ...entra.issuedTokens.map((issued) => issued.token),
        devops.systemAccessToken,
        ...devops.issuedTokens.map((issued) => issued.token),
        ...tokenServer.userPasswords(),
        ...tokenServer.issuedTokens.map((issued) => issued.token),
      ],
      stop: stopAll,
    };
    return environment;
  } catch (error) {
    await stopAll().catch(() => undefined);
    throw error;
  }
}
