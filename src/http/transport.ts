import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { PassThrough, Readable, type Duplex, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { connect as tlsConnect, rootCertificates } from 'node:tls';
import { ConnectionError, HttpError, TimeoutError, UserError } from '../errors.js';
import type { Logger } from '../log.js';
import { isTransient, parseRetryAfter, retry, type RetryAttempt, type RetryPolicy } from './retry.js';

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
  /** Longest wait for a new connection to be ready (TCP, proxy tunnel and TLS handshake). Default 15 s. */
  connectTimeoutMs?: number;
  /**
   * Longest silence on an open connection, while sending, while waiting for the answer or in the
   * middle of it. A stalled request is tried once more and no more, so an endpoint that
   * accepts connections and never answers fails after about twice this. Default 60 s.
   */
  idleTimeoutMs?: number;
  /** How hard every request is tried; see RetryPolicy for the defaults. */
  retry?: RetryPolicy;
  /** Where retries and stalls are reported, one warning line each. Default: nowhere. */
  logger?: Logger;
  /** Sent as User-Agent. */
  userAgent?: string;
}

export type HttpHeaders = Record<string, string>;

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string | URL;
  headers?: HttpHeaders;
  /**
   * A stream body is given as a function that opens it, so that every try sends it whole, and must
   * come with an exact content-length header: registries refuse chunked bodies.
   */
  body?: string | Buffer | (() => Readable);
  /**
   * Follow redirects of GET and HEAD (ACR answers blob reads with 307 to a data endpoint or storage).
   * The Authorization header is dropped when the redirect leaves the origin. Default true.
   */
  followRedirects?: boolean;
  /** How messages name the far end, before its host: `the ACR token server`. Default: the host alone. */
  endpoint?: string;
  /**
   * false: one try, with 408, 429 and 5xx thrown as HttpErrors like network failures, for a caller
   * that recovers on its own terms (a resumable upload asks the registry where to go on). Default:
   * the transport's retry policy, so a request is retried by the transport and by nothing else.
   */
  retry?: boolean;
  /** Statuses that also mean "not yet" at this endpoint (IMDS: 404 and 410 while an identity is being attached). */
  retryStatuses?: number[];
  /** The body is read within the try, so a connection lost mid-answer is retried too; a larger one is refused. Default 16 MiB. */
  maxResponseBytes?: number;
  /**
   * Where a 200 answer's body goes instead of memory (a blob download): opened anew for every try,
   * so a retried download starts over; the response then has an empty body. Other answers are read
   * as usual. maxResponseBytes does not apply to it.
   */
  saveTo?: () => Writable;
}

export interface HttpResponse {
  status: number;
  /** Header names are lower-case. */
  headers: Record<string, string | undefined>;
  /** The URL that answered, after redirects. */
  url: URL;
  bytes(): Promise<Buffer>;
  text(): Promise<string>;
  json<T>(): Promise<T>;
}

/**
 * An answer whose body is not read yet: `body` streams it. A connection that drops or goes silent
 * in the middle destroys `body` with a transient ConnectionError (TimeoutError for silence).
 */
export interface StreamedResponse extends HttpResponse {
  body: Readable;
}

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/**
 * The one HTTP client of the product, on Node's own http stack (native parser, nothing to load at
 * start-up). TLS trust and the proxy come from the agent's settings, connections are kept alive,
 * every request is retried here and only here, and failures on the wire become ConnectionErrors
 * that name the host and say what to check.
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
  private readonly retryPolicy: RetryPolicy;
  private readonly logger?: Logger;

  constructor(options: TransportOptions = {}) {
    const ca = options.caCertificates?.length ? [...rootCertificates, ...extraCaFromEnvironment(), ...options.caCertificates] : undefined;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 15_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.direct = new https.Agent({ keepAlive: true, ca });
    if (options.proxy) this.proxied = new TunnelingAgent(options.proxy, ca, this.connectTimeoutMs);
    this.bypass = (options.proxy?.bypass ?? []).map((pattern) => new RegExp(pattern, 'i'));
    this.userAgent = options.userAgent ?? 'private-aks-acr-pipelines';
    this.retryPolicy = options.retry ?? {};
    this.logger = options.logger;
  }

  /**
   * Sends one logical request: tried under the retry policy (unless `retry: false`), each try
   * following redirects and reading the whole answer. Resolves with any answer but 408, 429 and 5xx
   * (and `retryStatuses`), which are retried and in the end thrown.
   */
  send(req: HttpRequest): Promise<HttpResponse> {
    if (req.retry === false) return this.attempt(req);
    const url = new URL(req.url);
    const retryStatuses = req.retryStatuses ?? [];
    return retry(() => this.attempt(req), {
      ...this.retryPolicy,
      what: `${req.endpoint ? `${req.endpoint} ` : ''}${url.host} (${req.method} ${url.pathname})`,
      logger: this.logger,
      isRetryable: (error) => isTransient(error) || (error instanceof HttpError && retryStatuses.includes(error.status)),
    });
  }

  /**
   * Runs an operation made of several requests (a resumable upload) under this transport's retry
   * policy, as one budget; its requests go out with `retry: false`, so nothing retries inside it.
   */
  /**
   * A GET whose 2xx answer is streamed instead of read whole (a blob on its way to another
   * registry). It is tried like send() until the headers of an answer arrive, redirects followed;
   * what happens to the body after that is the caller's to recover from, e.g. with a Range request
   * for the rest. Answers other than 2xx are read whole, and `body` replays them.
   */
  stream(req: Omit<HttpRequest, 'method' | 'body' | 'maxResponseBytes'>): Promise<StreamedResponse> {
    const streamed = { ...req, method: 'GET' as const };
    const withBody = async (answer: HttpResponse): Promise<StreamedResponse> =>
      'body' in answer ? (answer as StreamedResponse) : { ...answer, body: Readable.from([await answer.bytes()]) };
    if (req.retry === false) return this.attempt(streamed, true).then(withBody);
    const url = new URL(req.url);
    return retry(async () => withBody(await this.attempt(streamed, true)), {
      ...this.retryPolicy,
      what: `${req.endpoint ? `${req.endpoint} ` : ''}${url.host} (GET ${url.pathname})`,
      logger: this.logger,
    });
  }

  retrying<T>(what: string, operation: (attempt: RetryAttempt) => Promise<T>, isRetryable?: (error: unknown) => boolean): Promise<T> {
    return retry(operation, { ...this.retryPolicy, what, logger: this.logger, isRetryable });
  }

  close(): Promise<void> {
    for (const agent of [this.direct, this.proxied, this.plain]) agent?.destroy();
    return Promise.resolve();
  }

  private async attempt(req: HttpRequest, streamBody = false): Promise<HttpResponse> {
    let url = new URL(req.url);
    let headers: HttpHeaders = { 'user-agent': this.userAgent, ...req.headers };
    const follow = (req.followRedirects ?? true) && (req.method === 'GET' || req.method === 'HEAD');
    const maxBytes = req.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    for (let hop = 0; ; hop++) {
      const response = await this.once(req.method, url, headers, req.body, maxBytes, streamBody, req.saveTo);
      const location = response.headers.location;
      if (follow && REDIRECT_STATUSES.has(response.status) && location && hop < MAX_REDIRECTS) {
        const next = new URL(location, url);
        if (next.origin !== url.origin) headers = withoutAuthorization(headers);
        url = next;
        continue;
      }
      const { status } = response;
      if (status === 408 || status === 429 || status >= 500 || req.retryStatuses?.includes(status)) {
        const detail = errorDetail(await response.text());
        throw new HttpError(
          `${req.endpoint ? `${req.endpoint} ` : ''}${url.host} answered ${req.method} ${url.pathname} with HTTP ${status}${detail ? ` (${detail})` : ''}`,
          status,
          parseRetryAfter(response.headers['retry-after']),
        );
      }
      return response;
    }
  }

  private agentFor(url: URL): http.Agent {
    if (url.protocol === 'http:') return this.plain;
    if (!this.proxied) return this.direct;
    const bypassed = this.bypass.some((pattern) => pattern.test(url.hostname) || pattern.test(url.href));
    return bypassed ? this.direct : this.proxied;
  }

  /**
   * One exchange on the wire, answer read whole — or, with `streamBody`, a 2xx answer handed over
   * as it starts, or with `saveTo` a 200 answer written there; connect and idle timeouts become
   * TimeoutErrors.
   */
  private once(
    method: HttpRequest['method'],
    url: URL,
    headers: HttpHeaders,
    body: HttpRequest['body'],
    maxBytes: number,
    streamBody = false,
    saveTo?: () => Writable,
  ): Promise<HttpResponse> {
    return new Promise((resolve, reject) => {
      const client = url.protocol === 'http:' ? http : https;
      const request = client.request(url, { method, headers, agent: this.agentFor(url) });
      let settled = false;
      // Once a streamed body is handed over, failures are that stream's.
      let streaming: PassThrough | undefined;
      let streamComplete = false;
      const fail = (error: unknown) => {
        const described = error instanceof UserError ? error : describeNetworkError(error, url);
        if (streaming) {
          // After the whole body arrived nothing can fail it any more.
          if (streamComplete || streaming.destroyed) return;
          request.destroy();
          streaming.destroy(described);
          return;
        }
        if (settled) return;
        settled = true;
        request.destroy();
        reject(described);
      };
      request.once('error', fail);
      request.setTimeout(this.idleTimeoutMs, () =>
        fail(new TimeoutError(`${url.host} went silent for ${seconds(this.idleTimeoutMs)} (idle timeout)`)),
      );
      request.once('socket', (socket) => {
        // A kept-alive socket is connected already; a new one must be ready (TLS included) in time.
        if (request.reusedSocket) return;
        const timer = setTimeout(
          () =>
            fail(
              new TimeoutError(
                `Cannot connect to ${url.host} within ${seconds(this.connectTimeoutMs)} (connect timeout): check that this agent has a network path to it (private endpoint, firewall, proxy).`,
              ),
            ),
          this.connectTimeoutMs,
        );
        socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      request.once('response', (response) => {
        const status = response.statusCode ?? 0;
        if (streamBody && status >= 200 && status < 300) {
          settled = true;
          const stream = new PassThrough();
          streaming = stream;
          response.once('end', () => (streamComplete = true));
          response.once('error', fail);
          response.once('aborted', () => fail(Object.assign(new Error('the connection closed in the middle of the answer'), { code: 'ECONNRESET' })));
          // A consumer that gives up (destroys the stream) closes the connection too.
          stream.once('close', () => {
            if (!response.complete) request.destroy();
          });
          response.pipe(stream);
          resolve(streamedResponse(response, url, stream));
          return;
        }
        if (saveTo && status === 200) {
          const sink = saveTo();
          response.once('aborted', () => fail(Object.assign(new Error('the connection closed in the middle of the answer'), { code: 'ECONNRESET' })));
          pipeline(response, sink).then(
            () => {
              if (settled) return;
              settled = true;
              resolve(bufferedResponse(response, url, Buffer.alloc(0)));
            },
            fail,
          );
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) {
            fail(new HttpError(`${url.host} answered ${method} ${url.pathname} with more than ${maxBytes} bytes; that is not an answer this client expects.`, response.statusCode ?? 0));
            return;
          }
          chunks.push(chunk);
        });
        response.once('error', fail);
        response.once('end', () => {
          if (settled) return;
          settled = true;
          resolve(bufferedResponse(response, url, Buffer.concat(chunks)));
        });
        response.once('aborted', () => fail(Object.assign(new Error('the connection closed in the middle of the answer'), { code: 'ECONNRESET' })));
      });
      if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) {
        request.end(body);
      } else {
        const stream = body();
        // A body that cannot be read is not a network failure: it is thrown as it is.
        stream.once('error', (error) => {
          if (settled) return;
          settled = true;
          request.destroy();
          reject(error);
        });
        stream.pipe(request);
      }
    });
  }
}

function seconds(ms: number): string {
  return `${ms % 1000 === 0 ? ms / 1000 : (ms / 1000).toFixed(1)} s`;
}

/** The first useful line of an error body: `{"errors":[…]}` (registries), `{"error":{…}}` (ARM), `{"error_description"}` (OAuth), or text. */
export function errorDetail(text: string): string {
  if (!text.trim()) return '';
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    const first = (Array.isArray(body.errors) ? body.errors[0] : typeof body.error === 'object' ? body.error : body) as Record<string, unknown> | undefined;
    const code = first?.code ?? (typeof body.error === 'string' ? body.error : undefined);
    const message = first?.message ?? body.error_description;
    const parts = [code, message].filter((part): part is string => typeof part === 'string' && part.length > 0);
    if (parts.length) return parts.join(': ').split(/\r?\n/)[0].slice(0, 300);
  } catch {
    // Not JSON: the text itself.
  }
  return text.trim().split(/\r?\n/)[0].slice(0, 200);
}

/** Opens https connections through an HTTP CONNECT tunnel, as the agent's proxy expects. */
class TunnelingAgent extends https.Agent {
  private readonly proxyUrl: URL;
  private readonly authorization?: string;

  constructor(
    proxy: ProxySettings,
    ca: string[] | undefined,
    private readonly connectTimeoutMs: number,
  ) {
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
    // A proxy that takes the connection and never answers CONNECT must not hold the request forever.
    tunnel.setTimeout(this.connectTimeoutMs, () =>
      tunnel.destroy(
        new TimeoutError(`The proxy ${this.proxyUrl.host} did not open a tunnel to ${target} within ${seconds(this.connectTimeoutMs)} (connect timeout): check the agent's proxy settings.`),
      ),
    );
    tunnel.once('connect', () => tunnel.setTimeout(0));
    tunnel.end();
    return undefined;
  }
}

function streamedResponse(response: http.IncomingMessage, url: URL, body: PassThrough): StreamedResponse {
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(response.headers)) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  let read: Promise<Buffer> | undefined;
  const bytes = () => (read ??= (async () => Buffer.concat(await body.toArray()))());
  return {
    status: response.statusCode ?? 0,
    headers,
    url,
    body,
    bytes,
    text: async () => (await bytes()).toString('utf8'),
    json: async <T>() => JSON.parse((await bytes()).toString('utf8')) as T,
  };
}

function bufferedResponse(response: http.IncomingMessage, url: URL, body: Buffer): HttpResponse {
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(response.headers)) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  return {
    status: response.statusCode ?? 0,
    headers,
    url,
    bytes: () => Promise.resolve(body),
    text: () => Promise.resolve(body.toString('utf8')),
    json: <T>() => Promise.resolve().then(() => JSON.parse(body.toString('utf8')) as T),
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
function describeNetworkError(error: unknown, url: URL): ConnectionError {
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
