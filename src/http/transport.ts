import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { Agent, ProxyAgent, request, type Dispatcher } from 'undici';
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
  /** Forward proxy for every request whose host is not bypassed. Default: direct. */
  proxy?: ProxySettings;
  /** Socket connect timeout. Default 15 s. */
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
 * The one HTTP client of the product. TLS trust and the proxy come from the agent's settings,
 * and failures on the wire become ConnectionErrors that say what to check.
 */
export class HttpTransport {
  private readonly direct: Dispatcher;
  private readonly proxied?: Dispatcher;
  private readonly bypass: RegExp[];
  private readonly userAgent: string;

  constructor(options: TransportOptions = {}) {
    const ca = options.caCertificates?.length ? [...rootCertificates, ...extraCaFromEnvironment(), ...options.caCertificates] : undefined;
    const timeouts = {
      headersTimeout: options.idleTimeoutMs ?? 120_000,
      bodyTimeout: options.idleTimeoutMs ?? 120_000,
      connectTimeout: options.connectTimeoutMs ?? 15_000,
    };
    const connect = ca ? { ca } : undefined;
    this.direct = new Agent({ ...timeouts, connect, keepAliveTimeout: 30_000 });
    if (options.proxy) {
      const { url, username, password } = options.proxy;
      const token = username ? `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}` : undefined;
      this.proxied = new ProxyAgent({ ...timeouts, uri: url, token, requestTls: connect, proxyTls: connect });
    }
    this.bypass = (options.proxy?.bypass ?? []).map((pattern) => new RegExp(pattern, 'i'));
    this.userAgent = options.userAgent ?? 'private-aks-acr-pipelines';
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

  async close(): Promise<void> {
    await Promise.all([this.direct.close(), this.proxied?.close()]);
  }

  private dispatcherFor(url: URL): Dispatcher {
    if (!this.proxied) return this.direct;
    const bypassed = this.bypass.some((pattern) => pattern.test(url.hostname) || pattern.test(url.href));
    return bypassed ? this.direct : this.proxied;
  }

  private async once(method: HttpRequest['method'], url: URL, headers: HttpHeaders, body: HttpRequest['body']): Promise<HttpResponse> {
    let raw: Dispatcher.ResponseData;
    try {
      raw = await request(url, { method, headers, body, dispatcher: this.dispatcherFor(url) });
    } catch (error) {
      throw describeNetworkError(error, url);
    }
    const responseHeaders: Record<string, string | undefined> = {};
    for (const [name, value] of Object.entries(raw.headers)) {
      responseHeaders[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
    }
    const guard = async <T>(read: () => Promise<T>): Promise<T> => {
      try {
        return await read();
      } catch (error) {
        throw describeNetworkError(error, url);
      }
    };
    return {
      status: raw.statusCode,
      headers: responseHeaders,
      url,
      text: () => guard(() => raw.body.text()),
      json: <T>() => guard(() => raw.body.json() as Promise<T>),
      discard: () => guard(() => raw.body.dump()),
    };
  }
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
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

function errorCode(error: unknown): string | undefined {
  const codes: string[] = [];
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    const code = (current as NodeJS.ErrnoException).code;
    if (code) codes.push(code);
  }
  // undici wraps the socket's own error (ECONNRESET, a TLS code) in UND_ERR_SOCKET; the inner one says more.
  return codes.find((code) => code !== 'UND_ERR_SOCKET') ?? codes[0];
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
