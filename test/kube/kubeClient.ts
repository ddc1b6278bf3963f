// A small Kubernetes REST client for the test helpers: JSON requests and
// watches over HTTPS, authenticated by client certificate or bearer token.
// The product talks to Kubernetes through its own client; this one only has
// to drive the test control plane and the fake kubelet.
import https from 'node:https';
import type { IncomingMessage } from 'node:http';

/** How to reach and authenticate to an API server. */
export interface KubeCredentials {
  /** `https://127.0.0.1:<port>` */
  server: string;
  /** PEM of the CA that signed the API server's serving certificate. */
  caPem: string;
  /** Client certificate and key (PEM); the identity is the CN, the groups the O entries. */
  clientCert?: { certPem: string; keyPem: string };
  /** Bearer token (service-account or OIDC). */
  token?: string;
}

/** A Kubernetes `Status` answer to a failed request. */
export class KubeApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    /** HTTP status code, e.g. 403, 404, 409, 422. */
    readonly statusCode: number,
    /** `Status.reason`, e.g. `Forbidden`, `NotFound`, `AlreadyExists`. */
    readonly reason: string,
    /** `Status.message` as the API server wrote it. */
    readonly serverMessage: string,
  ) {
    super(`${method} ${path}: ${statusCode} ${reason}: ${serverMessage}`);
    this.name = 'KubeApiError';
  }
}

/** One event of a watch stream (`type` is ADDED, MODIFIED, DELETED, BOOKMARK or ERROR). */
export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

/** The object metadata every Kubernetes object carries (the part the helpers read). */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string;
  ownerReferences?: { kind: string; name: string }[];
}

export interface KubeList<T> {
  metadata: { resourceVersion: string };
  items: T[];
}

export interface RequestOptions {
  /** Defaults to `application/json`; use `application/merge-patch+json` for PATCH. */
  contentType?: string;
}

export class KubeClient {
  private readonly agent: https.Agent;

  constructor(private readonly credentials: KubeCredentials) {
    this.agent = new https.Agent({
      keepAlive: true,
      ca: credentials.caPem,
      cert: credentials.clientCert?.certPem,
      key: credentials.clientCert?.keyPem,
    });
  }

  /**
   * Sends one request and returns the decoded JSON answer (or the text, for the few plain-text
   * endpoints such as `/readyz`); throws KubeApiError on a non-2xx status.
   */
  async request<T>(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    const response = await this.send(method, path, body, options.contentType);
    const text = await readAll(response);
    const statusCode = response.statusCode ?? 0;
    if (statusCode < 200 || statusCode > 299) throw toApiError(method, path, statusCode, text);
    const isJson = response.headers['content-type']?.includes('json') ?? false;
    return (isJson ? JSON.parse(text) : text) as T;
  }

  /** Like `request`, but answers `undefined` for a 404 instead of throwing. */
  async get<T>(path: string): Promise<T | undefined> {
    try {
      return await this.request<T>('GET', path);
    } catch (error) {
      if (error instanceof KubeApiError && error.statusCode === 404) return undefined;
      throw error;
    }
  }

  /**
   * Streams a watch (`path` must carry `watch=1`) and calls `onEvent` for each event, one at a
   * time. Resolves when the server ends the stream or `signal` aborts it.
   */
  async watch<T>(path: string, onEvent: (event: WatchEvent<T>) => Promise<void>, signal: AbortSignal): Promise<void> {
    const response = await this.send('GET', path, undefined, undefined, signal);
    if (response.statusCode !== 200) throw toApiError('GET', path, response.statusCode ?? 0, await readAll(response));
    let buffered = '';
    try {
      for await (const chunk of response) {
        buffered += (chunk as Buffer).toString('utf8');
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line) await onEvent(JSON.parse(line) as WatchEvent<T>);
        }
      }
    } catch (error) {
      if (!signal.aborted) throw error;
    }
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.agent.destroy();
  }

  private send(method: string, path: string, body: unknown, contentType = 'application/json', signal?: AbortSignal): Promise<IncomingMessage> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (payload) Object.assign(headers, { 'content-type': contentType, 'content-length': String(payload.length) });
    if (this.credentials.token) headers.authorization = `Bearer ${this.credentials.token}`;
    return new Promise((resolve, reject) => {
      const request = https.request(new URL(path, this.credentials.server), { method, headers, agent: this.agent, signal }, resolve);
      request.on('error', reject);
      request.end(payload);
    });
  }
}

async function readAll(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function toApiError(method: string, path: string, statusCode: number, text: string): KubeApiError {
  let reason = 'Unknown';
  let message = text.slice(0, 500);
  try {
    const status = JSON.parse(text) as { reason?: string; message?: string };
    reason = status.reason ?? reason;
    message = status.message ?? message;
  } catch {
    // Not a Status object (e.g. a plain-text 401); keep the raw text.
  }
  return new KubeApiError(method, path, statusCode, reason, message);
}
