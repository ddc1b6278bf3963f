import { createCredential, type AzureIdentity } from '../azure/entra.js';
import { AcrTokenExchange } from './exchange.js';
import { HttpTransport, type TransportOptions } from '../http/transport.js';
import type { Logger, SecretRegistry } from '../log.js';
import { RegistryClient } from '../oci/registry.js';
import type { RetryOptions } from '../http/retry.js';

/** Who the registry tasks act as: an Entra identity (traded for ACR tokens) or a registry user. */
export type RegistryAuth = { kind: 'azure'; identity: AzureIdentity } | { kind: 'basic'; username: string; password: string };

export interface RegistrySessionOptions {
  /** Validated login server (`host` or `host:port`). */
  host: string;
  auth: RegistryAuth;
  transport?: TransportOptions;
  logger: Logger;
  secrets: SecretRegistry;
  retry?: RetryOptions;
  /** Bytes per upload PATCH; see RegistryClientOptions. */
  chunkSize?: number;
}

export interface RegistrySession {
  client: RegistryClient;
  close(): Promise<void>;
}

/** Wires transport, identity and token exchange into one registry client. */
export function openRegistrySession(options: RegistrySessionOptions): RegistrySession {
  const http = new HttpTransport(options.transport);
  const identity =
    options.auth.kind === 'azure'
      ? ({ kind: 'entra', credential: createCredential(options.auth.identity, http, options.secrets) } as const)
      : ({ kind: 'basic', username: options.auth.username, password: options.auth.password } as const);
  const tokens = new AcrTokenExchange(identity, http, options.secrets);
  tokens.warmUp();
  const client = new RegistryClient({ host: options.host, http, tokens, logger: options.logger, retry: options.retry, chunkSize: options.chunkSize });
  return { client, close: () => http.close() };
}
