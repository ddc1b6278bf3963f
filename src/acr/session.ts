import { createCredential, type AzureIdentity } from '../azure/entra.js';
import type { RegistryLogin } from './dockerConfig.js';
import { AcrTokenExchange } from './exchange.js';
import { HttpTransport, type TransportOptions } from '../http/transport.js';
import type { Logger, SecretRegistry } from '../log.js';
import { RegistryClient } from '../oci/registry.js';
import { RealmTokenProvider } from '../oci/tokens.js';

/** Who the registry tasks act as: an Entra identity (traded for ACR tokens) or a registry user. */
export type RegistryAuth = { kind: 'azure'; identity: AzureIdentity } | { kind: 'basic'; username: string; password: string };

export interface RegistrySessionOptions {
  /** Validated login server (`host` or `host:port`). */
  host: string;
  auth: RegistryAuth;
  /** TLS trust, proxy, timeouts and retry policy; retries are reported to `logger` unless these name another. */
  transport?: TransportOptions;
  logger: Logger;
  secrets: SecretRegistry;
}

export interface RegistrySession {
  client: RegistryClient;
  /** A client for another registry (a base image's), with the same identity and connections. */
  clientFor(host: string): RegistryClient;
  /** The login for `host`, already registered as a secret; undefined when the registry asks for none. */
  loginFor(host: string): Promise<RegistryLogin | undefined>;
  close(): Promise<void>;
}

/** Wires transport, identity and token exchange into one registry client. */
export function openRegistrySession(options: RegistrySessionOptions): RegistrySession {
  const http = new HttpTransport({ logger: options.logger, ...options.transport });
  let tokens: AcrTokenExchange | RealmTokenProvider;
  let exchange: AcrTokenExchange | undefined;
  if (options.auth.kind === 'azure') {
    exchange = new AcrTokenExchange(createCredential(options.auth.identity, http, options.secrets), http, options.secrets);
    exchange.warmUp();
    tokens = exchange;
  } else {
    tokens = new RealmTokenProvider(http, options.secrets, { username: options.auth.username, password: options.auth.password });
  }
  const { auth } = options;
  const clients = new Map<string, RegistryClient>();
  const clientFor = (host: string) => {
    let client = clients.get(host);
    if (!client) clients.set(host, (client = new RegistryClient({ host, http, tokens, logger: options.logger })));
    return client;
  };
  const loginFor = async (host: string): Promise<RegistryLogin | undefined> => {
    if (auth.kind === 'basic') return { username: auth.username, password: auth.password };
    const challenge = await clientFor(host).challenge();
    // No challenge: the registry lets anyone in, and a login would only be one more secret on disk.
    return challenge && { identityToken: await exchange!.refreshTokenFor(challenge) };
  };
  return { client: clientFor(options.host), clientFor, loginFor, close: () => http.close() };
}
