import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Duplex, Readable } from 'node:stream';
import { connect as tlsConnect, rootCertificates } from 'node:tls';
import { ConnectionError } from '../errors.js';

export interface ProxySettings {
  /** http(s)://host:port of the proxy. */
  url: string;
  username?: string;
  password?: string;
  /** Regular expressions of host names (or URLs) that go direct, as the agent's proxy bypass list. */
  bypass?: string[];
}

export interface TransportOptions {
  /**
   * Extra trusted CA certificates (PEM), added to Node's roots and to NODE_EXTRA_CA_CERTS.
   * The task passes the agent's certificate settings here. Default: none.
   */
  caCertificates?: string[];
  /** Forward proxy (HTTP CONNECT) for every https request whose host is not bypassed. Default: direct. */
  proxy?: ProxySettings;
  /** Longest wait for a connection to open. Default 15 s. */
  connectTimeoutMs?: number;
  /** Longest silence while waiting for a response or body bytes. Default 120 s. */
  idleTimeoutMs?: number;
  /** Sent as User-Agent. */
  userAgent?: string;
}

export type HttpHeaders = Record<string, string>;

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string | URL;
  headers?: HttpHeaders;
  /** A stream must come with an exact content-length header: registries refuse chunked bodies. */
  body?: string | Buffer | Readable;
  /**
   * Follow redirects of GET and HEAD (ACR answers blob reads with 307 to a data endpoint or storage).
   * The Authorization header is dropped when the redirect leaves the origin. Default true.
   */
  followRedirects?: boolean;
}

export interface HttpResponse {
  status: number;
  /** Header names are lower-case. */
  headers: Record<string, string | undefined>;
  /** The URL that answered, after redirects. */
  url: URL;
  text(): Promise<string>;
  json<T>(): Promise<T>;
  /** Reads and discards the body so the connection can be reused. */
  discard(): Promise<void>;
}

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * The one HTTP client of the product, on Node's own http stack (native parser, nothing to load at
 * start-up). TLS trust and the proxy come from the agent's settings, connections are kept alive,
 * and failures on the wire become ConnectionErrors that say what to check.
 */
export class HttpTransport {
  private readonly direct: https.Agent;
  private readonly proxied?: https.Agent;
  // Plain http is only the instance metadata service, which never goes through a proxy.
  private readonly plain = new http.Agent({ keepAlive: true });
  private readonly bypass: RegExp[];
  private readonly userAgent: string;
  private readonly connectTimeoutMs: number;
  private readonly idleTimeoutMs: number;

  constructor(options: TransportOptions = {}) {
    const ca = options.caCertificates?.length ? [...rootCertificates, ...extraCaFromEnvironment(), ...options.caCertificates] : undefined;
    this.direct = new https.Agent({ keepAlive: true, ca });
    if (options.proxy) this.proxied = new TunnelingAgent(options.proxy, ca);
    this.bypass = (options.proxy?.bypass ?? []).map((pattern) => new RegExp(pattern, 'i'));
    this.userAgent = options.userAgent ?? 'private-aks-acr-pipelines';
    this.connectTimeoutMs = options.connectTimeoutMs ?? 15_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 120_000;
  }

  async send(req: HttpRequest): Promise<HttpResponse> {
    let url = new URL(req.url);
    let headers: HttpHeaders = { 'user-agent': this.userAgent, ...req.headers };
    const follow = (req.followRedirects ?? true) && (req.method === 'GET' || req.method === 'HEAD');
    for (let hop = 0; ; hop++) {
      const response = await this.once(req.method, url, headers, req.body);
      const location = response.headers.location;
      if (!follow || !REDIRECT_STATUSES.has(response.status) || !location || hop >= MAX_REDIRECTS) return response;
      await response.discard();
      const next = new URL(location, url);
      if (next.origin !== url.origin) headers = withoutAuthorization(headers);
      url = next;
    }
  }

  close(): Promise<void> {
    for (const agent of [this.direct, this.proxied, this.plain]) agent?.destroy();
    return Promise.resolve();
  }

  private agentFor(url: URL): http.Agent {
    if (url.protocol === 'http:') return this.plain;
    if (!this.proxied) return this.direct;
    const bypassed = this.bypass.some((pattern) => pattern.test(url.hostname) || pattern.test(url.href));
    return bypassed ? this.direct : this.proxied;
  }

  private once(method: HttpRequest['method'], url: URL, headers: HttpHeaders, body: HttpRequest['body']): Promise<HttpResponse> {
    return new Promise((resolve, reject) => {
      const client = url.protocol === 'http:' ? http : https;
      const request = client.request(url, { method, headers, agent: this.agentFor(url) });
      const fail = (error: unknown) => {
        request.destroy();
        reject(describeNetworkError(error, url));
      };
      request.once('error', fail);
      request.setTimeout(this.idleTimeoutMs, () => request.destroy(Object.assign(new Error('no answer in time'), { code: 'ETIMEDOUT' })));
      request.once('socket', (socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(() => request.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), this.connectTimeoutMs);
        socket.once('connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      request.once('response', (response) => resolve(wrapResponse(response, url)));
      if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) {
        request.end(body);
      } else {
        body.once('error', fail);
        body.pipe(request);
      }
    });
  }
}

/** Opens https connections through an HTTP CONNECT tunnel, as the agent's proxy expects. */
class TunnelingAgent extends https.Agent {
  private readonly proxyUrl: URL;
  private readonly authorization?: string;

  constructor(proxy: ProxySettings, ca: string[] | undefined) {
    super({ keepAlive: true, ca });
    this.proxyUrl = new URL(proxy.url);
    if (proxy.username) this.authorization = `Basic ${Buffer.from(`${proxy.username}:${proxy.password ?? ''}`).toString('base64')}`;
  }

  override createConnection(options: https.RequestOptions, callback?: (error: Error | null, socket: Duplex) => void): Duplex | null | undefined {
    const target = `${options.host ?? options.hostname}:${options.port ?? 443}`;
    const client = this.proxyUrl.protocol === 'https:' ? https : http;
    const tunnel = client.request(this.proxyUrl, {
      method: 'CONNECT',
      path: target,
      headers: { host: target, ...(this.authorization ? { 'proxy-authorization': this.authorization } : {}) },
      agent: false,
    });
    tunnel.once('connect', (response, socket) => {
      if (response.statusCode !== 200) {
        socket.destroy();
        callback?.(Object.assign(new Error(`proxy ${this.proxyUrl.host} refused CONNECT ${target} with HTTP ${response.statusCode}`), { code: 'EPROXY' }), socket);
        return;
      }
      callback?.(null, tlsConnect({ ...(options as object), socket, servername: options.servername || undefined }));
    });
    tunnel.once('error', (error) => callback?.(error, tunnel.socket!));
    tunnel.end();
    return undefined;
  }
}

function wrapResponse(response: http.IncomingMessage, url: URL): HttpResponse {
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(response.headers)) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  const read = async (): Promise<string> => {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of response) chunks.push(chunk as Buffer);
    } catch (error) {
      throw describeNetworkError(error, url);
    }
    return Buffer.concat(chunks).toString('utf8');
  };
  return {
    status: response.statusCode ?? 0,
    headers,
    url,
    text: read,
    json: async <T>() => JSON.parse(await read()) as T,
    discard: async () => {
      response.resume();
      if (!response.complete) await new Promise<void>((done) => response.once('close', done));
    },
  };
}

function withoutAuthorization(headers: HttpHeaders): HttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => name.toLowerCase() !== 'authorization'));
}

/** NODE_EXTRA_CA_CERTS only extends Node's default trust; an explicit `ca` list must repeat it. */
function extraCaFromEnvironment(): string[] {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  if (!file) return [];
  try {
    return [readFileSync(file, 'utf8')];
  } catch {
    return [];
  }
}

const TLS_TRUST_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);
const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN']);

function errorCode(error: unknown): string | undefined {
  const codes: string[] = [];
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    const code = (current as NodeJS.ErrnoException).code;
    if (code) codes.push(code);
  }
  // The innermost code says most: a wrapper's own code often only repeats that something failed.
  return codes.at(-1);
}

/** Turns a socket or TLS failure into one line that says what to check. */
export function describeNetworkError(error: unknown, url: URL): ConnectionError {
  if (error instanceof ConnectionError) return error;
  const code = errorCode(error) ?? 'unknown';
  const host = url.host;
  if (TLS_TRUST_CODES.has(code)) {
    return new ConnectionError(
      `TLS: the certificate of ${host} is not trusted (${code}). If it is issued by a private CA, add that CA to the agent's certificate settings or to NODE_EXTRA_CA_CERTS.`,
      false,
      { cause: error },
    );
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return new ConnectionError(`TLS: the certificate of ${host} is not valid for it (${code}); check the host name you gave and the server's certificate.`, false, {
      cause: error,
    });
  }
  if (code === 'EPROXY') {
    return new ConnectionError(`${(error as Error).message}: check the agent's proxy settings (URL, user name and password).`, false, { cause: error });
  }
  if (code === 'ENOTFOUND') {
    return new ConnectionError(
      `Cannot resolve ${url.hostname} (ENOTFOUND): check the name, and that this agent uses the private DNS zone of the private endpoint.`,
      false,
      { cause: error },
    );
  }
  return new ConnectionError(
    `Cannot reach ${host} (${code}): check that this agent has a network path to it (private endpoint, firewall, proxy).`,
    TRANSIENT_CODES.has(code) || code === 'unknown',
    { cause: error },
  );
}
