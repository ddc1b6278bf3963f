// docker's config.json: the login file every registry tool the tasks start reads (buildctl, Trivy,
// helm). Written owner-only into a private folder the task removes, so no credential is ever an
// argument or an environment variable of the tool.
import { writeFile } from 'node:fs/promises';
import type { SecretRegistry } from '../log.js';

/**
 * How a tool that logs in by itself acts as the task's identity: an ACR refresh token, which the
 * tool trades for access tokens at the registry's realm (`identitytoken`, the OAuth2 refresh-token
 * grant, as after `az acr login`), or a registry user's name and password.
 */
export type RegistryLogin = { identityToken: string } | { username: string; password: string };

/**
 * Writes `file` (mode 0600) with one `auths` entry per host. A user's `auth` (base64 of
 * `user:password`) is a new form of the secret, so it is registered before it is written; a
 * refresh token was registered when it was minted.
 */
export async function writeDockerConfig(file: string, logins: ReadonlyMap<string, RegistryLogin>, secrets: SecretRegistry): Promise<void> {
  const auths: Record<string, { identitytoken: string } | { auth: string }> = {};
  for (const [host, login] of logins) {
    if ('identityToken' in login) {
      auths[host] = { identitytoken: login.identityToken };
    } else {
      const auth = Buffer.from(`${login.username}:${login.password}`).toString('base64');
      secrets.register(auth);
      auths[host] = { auth };
    }
  }
  await writeFile(file, JSON.stringify({ auths }), { mode: 0o600 });
}
