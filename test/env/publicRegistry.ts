// A "public" source registry for the import tests, standing where Docker Hub or ghcr.io would: a
// second real distribution instance with its own CA (so clients must trust two), and a Docker
// token server (distribution "token authentication specification") that gives anyone a pull token
// for public repositories, and registered users pull and push everywhere — the two ways the import
// task reads a source: anonymously, or with a Docker Registry connection.
import { X509Certificate, createPrivateKey, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseScope, type AccessEntry } from './acr.js';
import { createTestCa, type TestCa } from './ca.js';
import { writeRegistryAuthFile, type RegistryClientTrust } from './environment.js';
import { basicCredentials, requestUrl, sendJson, startServer } from './http.js';
import { nowSeconds, signJwt, type IssuedToken } from './jwt.js';
import { startRegistry, type RunningRegistry } from './registry.js';

const ISSUER = 'public test registry token server';

export interface TokenRequestRecord {
  /** The user name, or undefined for an anonymous request. */
  username?: string;
  scopes: string[];
  granted: AccessEntry[];
}

export interface PublicRegistry {
  /** Its own CA, unrelated to the private registry's. */
  ca: TestCa;
  registry: RunningRegistry;
  host: string;
  /** Repositories anyone may pull; others need a user. Default: every repository. */
  privateRepositories: Set<string>;
  /** A user with pull and push everywhere (to seed the registry, or as the import's sourceConnection). */
  addUser(): { username: string; password: string };
  /** skopeo/oras/helm files for a user of this registry. */
  clientTrust(user: { username: string; password: string }): Promise<RegistryClientTrust>;
  tokenRequests: TokenRequestRecord[];
  issuedTokens: IssuedToken[];
  /** Passwords and tokens, for leak scans. */
  secrets(): string[];
  stop(): Promise<void>;
}

function equalSecrets(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

export async function startPublicRegistry(): Promise<PublicRegistry> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'public-registry-'));
  const stoppers: (() => Promise<void>)[] = [];
  const stop = async () => {
    await Promise.allSettled(stoppers.reverse().map((stopOne) => stopOne()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const ca = await createTestCa(path.join(dir, 'ca'));
    const [tls, signing] = await Promise.all([ca.issue('public-token-server', ['127.0.0.1', 'localhost']), ca.issue('public-token-signing', [], { keyType: 'rsa' })]);
    const signingKey = createPrivateKey(signing.keyPem);
    const x5c = [new X509Certificate(signing.certPem).raw.toString('base64')];
    const users = new Map<string, string>();
    const services = new Set<string>();
    const privateRepositories = new Set<string>();
    const tokenRequests: TokenRequestRecord[] = [];
    const issuedTokens: IssuedToken[] = [];

    const server = await startServer((req, res) => {
      const url = requestUrl(req);
      if (url.pathname !== '/token' || req.method !== 'GET') return sendJson(res, 404, { errors: [{ code: 'NOT_FOUND', message: `no ${req.method ?? ''} ${url.pathname}` }] });
      const service = url.searchParams.get('service') ?? '';
      if (!services.has(service)) return sendJson(res, 400, { errors: [{ code: 'UNSUPPORTED', message: `unknown service ${service}` }] });
      const credentials = basicCredentials(req);
      let username: string | undefined;
      if (credentials) {
        const password = users.get(credentials.username);
        if (password === undefined || !equalSecrets(password, credentials.password)) {
          return sendJson(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'incorrect username or password' }] }, { 'WWW-Authenticate': `Basic realm="${server.url}/token"` });
        }
        username = credentials.username;
      }
      const scopes = url.searchParams.getAll('scope').flatMap((scope) => scope.split(' ')).filter(Boolean);
      const granted: AccessEntry[] = [];
      for (const scope of scopes) {
        const requested = parseScope(scope);
        if (requested?.type !== 'repository') continue;
        const allowed = username ? ['pull', 'push'] : privateRepositories.has(requested.name) ? [] : ['pull'];
        const actions = requested.actions.filter((action) => allowed.includes(action));
        if (actions.length > 0) granted.push({ type: 'repository', name: requested.name, actions });
      }
      tokenRequests.push({ username, scopes, granted });
      const now = nowSeconds();
      const claims = { jti: randomUUID(), iss: ISSUER, sub: username ?? '', aud: service, iat: now, nbf: now, exp: now + 300, access: granted };
      const token = signJwt(claims, signingKey, { x5c });
      issuedTokens.push({ token, claims });
      sendJson(res, 200, { token, access_token: token, expires_in: 300, issued_at: new Date(now * 1000).toISOString() });
    }, tls);
    stoppers.push(() => server.stop());

    const registry = await startRegistry({
      ca,
      tokenServer: { realm: `${server.url}/token`, issuer: ISSUER, rootCertPath: signing.certPath, registerService: (service) => services.add(service) },
      dir: path.join(dir, 'registry'),
    });
    stoppers.push(() => registry.stop());
    const certDir = path.join(dir, 'client-certs');
    await mkdir(certDir, { mode: 0o700 });
    await writeFile(path.join(certDir, 'ca.crt'), ca.caCertPem);

    return {
      ca, registry, host: registry.host, privateRepositories, tokenRequests, issuedTokens,
      addUser() {
        const user = { username: `user-${randomBytes(4).toString('hex')}`, password: randomBytes(18).toString('base64url') };
        users.set(user.username, user.password);
        return user;
      },
      async clientTrust(user) {
        const clientDir = await mkdtemp(path.join(dir, 'client-'));
        const authFile = path.join(clientDir, 'auth.json');
        await writeRegistryAuthFile(authFile, registry.host, user.username, user.password);
        const toolEnv = { ...process.env, HELM_CACHE_HOME: path.join(clientDir, 'helm-cache'), HELM_CONFIG_HOME: path.join(clientDir, 'helm-config'), HELM_DATA_HOME: path.join(clientDir, 'helm-data') };
        return { host: registry.host, caFile: ca.caCertPath, certDir, authFile, toolEnv };
      },
      secrets: () => [...users.values(), ...issuedTokens.map((issued) => issued.token)],
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
