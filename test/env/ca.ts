// A throwaway certificate authority for the loopback servers. Node's crypto cannot write X.509
// certificates, so the openssl CLI does (argument arrays, never a shell). Keys are written 0600.
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface IssuedCertificate {
  certPath: string;
  keyPath: string;
  certPem: string;
  keyPem: string;
}

export interface IssueOptions {
  /**
   * `ec` (P-256, default) is fast to make and fine for TLS. `rsa` (2048 bits) is for keys that sign
   * RS256 JWTs: Entra client-certificate assertions and the ACR token server's signing key.
   */
  keyType?: 'ec' | 'rsa';
}

export interface TestCa {
  caCertPath: string;
  caCertPem: string;
  /** A leaf certificate signed by this CA; `sans` are IP addresses or DNS names (may be empty for signing-only certificates). */
  issue(name: string, sans: string[], options?: IssueOptions): Promise<IssuedCertificate>;
}

/** Short-lived on purpose: nothing made here should outlive a test run. */
const VALIDITY_DAYS = '2';

function keyArgs(keyType: 'ec' | 'rsa'): string[] {
  return keyType === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
}

async function openssl(args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim().split('\n').pop() ?? String(error);
    throw new Error(`openssl ${args[0]} failed: ${stderr}`);
  }
}

/** Certificate names become file names; keep them to a safe alphabet. */
function assertSafeName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new Error(`certificate name "${name}" must be letters, digits, '.', '_' or '-'`);
}

export async function createTestCa(dir: string): Promise<TestCa> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const caCertPath = path.join(dir, 'ca.crt');
  const caKeyPath = path.join(dir, 'ca.key');
  await openssl([
    'req', '-x509', ...keyArgs('ec'), '-nodes', '-keyout', caKeyPath, '-out', caCertPath,
    '-days', VALIDITY_DAYS, '-subj', '/CN=private-aks-acr-pipelines test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await chmod(caKeyPath, 0o600);
  const caCertPem = await readFile(caCertPath, 'utf8');

  const issued = new Set<string>();
  async function issue(name: string, sans: string[], options: IssueOptions = {}): Promise<IssuedCertificate> {
    assertSafeName(name);
    if (issued.has(name)) throw new Error(`certificate "${name}" was already issued by this CA`);
    issued.add(name);
    const certPath = path.join(dir, `${name}.crt`);
    const keyPath = path.join(dir, `${name}.key`);
    const extensions = [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
    ];
    if (sans.length > 0) {
      extensions.push(`subjectAltName=${sans.map((san) => (isIP(san) ? `IP:${san}` : `DNS:${san}`)).join(',')}`);
    }
    await openssl([
      'req', '-x509', '-CA', caCertPath, '-CAkey', caKeyPath, ...keyArgs(options.keyType ?? 'ec'), '-nodes',
      '-keyout', keyPath, '-out', certPath, '-days', VALIDITY_DAYS, '-subj', `/CN=${name}`,
      ...extensions.flatMap((extension) => ['-addext', extension]),
    ]);
    await chmod(keyPath, 0o600);
    const [certPem, keyPem] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
    return { certPath, keyPath, certPem, keyPem };
  }

  return { caCertPath, caCertPem, issue };
}
