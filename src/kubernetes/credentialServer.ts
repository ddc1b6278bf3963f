// The task's half of the credential plug-in helm runs (see credentialPlugin.ts). helm — client-go,
// really — runs the plug-in whenever it has no valid credential: before its first request, once the
// last one's expirationTimestamp has passed, and after a 401. The plug-in asks this server over a
// unix socket in a private (0700) folder, the way ssh-agent hands out keys: only the agent's own
// user can connect, and the credential itself never touches a file or a command line. A long
// `helm --wait` thus gets a fresh Entra token (or re-read service-account token) whenever it needs one.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwtClaims } from '../azure/jwt.js';
import { errorMessage } from '../errors.js';
import type { ClusterAccess } from './access.js';
import type { CredentialAnswer } from './credentialPlugin.js';

/** How helm starts the plug-in: the task's node and the bundled script; the socket path is appended. */
export interface CredentialPluginCommand {
  command: string;
  args: readonly string[];
}

interface CredentialServer {
  socketPath: string;
  /** Stops answering and removes the socket (and its folder when it had to live outside `folder`). */
  close(): Promise<void>;
}

/** sockaddr_un holds 108 bytes on Linux, the terminating NUL included. */
const SOCKET_PATH_LIMIT = 107;

/**
 * Serves `access`'s credential as an ExecCredential on a socket in `folder` (which must be private,
 * 0700). An agent temp path too long for a socket address gets a private folder in the OS temp
 * folder instead, removed by close().
 */
export async function startCredentialServer(access: ClusterAccess, folder: string): Promise<CredentialServer> {
  let socketFolder = folder;
  let ownFolder: string | undefined;
  if (Buffer.byteLength(join(folder, 'kube-credential.sock')) > SOCKET_PATH_LIMIT) {
    ownFolder = await mkdtemp(join(tmpdir(), 'kube-credential-'));
    socketFolder = ownFolder;
  }
  const socketPath = join(socketFolder, 'kube-credential.sock');
  const server = createServer((socket) => {
    socket.on('error', () => socket.destroy());
    void answer(access).then((result) => socket.end(JSON.stringify(result)));
  });
  await listen(server, socketPath);
  return {
    socketPath,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(ownFolder ?? socketPath, { recursive: true, force: true });
    },
  };
}

async function listen(server: Server, path: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function answer(access: ClusterAccess): Promise<CredentialAnswer> {
  try {
    return { credential: await execCredential(access) };
  } catch (error) {
    // Travels to helm's stderr, and from there into the task's log: a message, never a credential.
    return { error: `cannot get a credential for ${access.server}: ${errorMessage(error).split('\n')[0]}` };
  }
}

/** The ExecCredential (client.authentication.k8s.io/v1) for the access's current credential. */
export async function execCredential(access: ClusterAccess, now = Date.now()): Promise<object> {
  const credentials = access.credentials;
  if (credentials.kind === 'clientCertificate') {
    return { apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { clientCertificateData: credentials.certPem, clientKeyData: credentials.keyPem } };
  }
  const token = await credentials.token();
  const expiresAt = renewalTime(token, now);
  return {
    apiVersion: 'client.authentication.k8s.io/v1',
    kind: 'ExecCredential',
    status: { token, ...(expiresAt ? { expirationTimestamp: new Date(expiresAt).toISOString().replace(/\.\d+Z$/, 'Z') } : {}) },
  };
}

/**
 * When client-go should ask again: before the token's own expiry by five minutes (when Entra
 * tokens are refreshed anyway) or by half its remaining life, whichever is less, so no request
 * leaves with a token about to die. Undefined for tokens that carry no expiry (static tokens):
 * client-go then keeps them until a 401.
 */
function renewalTime(token: string, now: number): number | undefined {
  const exp = decodeJwtClaims(token)?.exp;
  if (typeof exp !== 'number') return undefined;
  const expiresMs = exp * 1000;
  return expiresMs - Math.min(5 * 60_000, Math.max(0, expiresMs - now) / 2);
}
