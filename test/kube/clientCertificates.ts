// The control plane's client-certificate authority. Kubernetes reads a
// client certificate's user from its CN and its groups from its O entries
// (`system:masters` for the admin, `system:kube-controller-manager` as a user
// name), which test/env/ca.ts does not write — it issues serving certificates
// named after files. So the API server gets a second CA of its own for
// `--client-ca-file`, as real clusters may; serving certificates still come
// from the shared test CA.
import { chmod, mkdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { runTool } from '../env/processes.js';

export interface ClientCertificate {
  certPem: string;
  keyPem: string;
  certPath: string;
  keyPath: string;
}

export interface ClientCa {
  caCertPath: string;
  /** A client certificate for `user` in `groups`; `fileName` names the files under the CA's folder. */
  issue(fileName: string, user: string, groups: string[]): Promise<ClientCertificate>;
}

/** As short-lived as the test CA: nothing made here should outlive a test run. */
const VALIDITY_DAYS = '2';
const P256_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-noenc'];

/** openssl's `-subj` syntax: `/` separates entries, so a `/` inside a value is escaped. */
function subject(user: string, groups: string[]): string {
  const escape = (value: string): string => value.replace(/[\\/]/g, (char) => `\\${char}`);
  return [...groups.map((group) => `/O=${escape(group)}`), `/CN=${escape(user)}`].join('');
}

export async function createClientCa(dir: string): Promise<ClientCa> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const caCertPath = path.join(dir, 'client-ca.crt');
  const caKeyPath = path.join(dir, 'client-ca.key');
  await runTool('openssl', [
    'req', '-x509', ...P256_KEY, '-keyout', caKeyPath, '-out', caCertPath, '-days', VALIDITY_DAYS,
    '-subj', '/CN=test control plane client CA',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await chmod(caKeyPath, 0o600);

  async function issue(fileName: string, user: string, groups: string[]): Promise<ClientCertificate> {
    const certPath = path.join(dir, `${fileName}.crt`);
    const keyPath = path.join(dir, `${fileName}.key`);
    await runTool('openssl', [
      'req', '-x509', '-CA', caCertPath, '-CAkey', caKeyPath, ...P256_KEY, '-keyout', keyPath, '-out', certPath,
      '-days', VALIDITY_DAYS, '-subj', subject(user, groups),
      '-addext', 'basicConstraints=critical,CA:FALSE',
      '-addext', 'keyUsage=critical,digitalSignature',
      '-addext', 'extendedKeyUsage=clientAuth',
    ]);
    await chmod(keyPath, 0o600);
    const [certPem, keyPem] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
    return { certPem, keyPem, certPath, keyPath };
  }

  return { caCertPath, issue };
}
