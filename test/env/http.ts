// Small HTTP(S) plumbing shared by the stand-ins: start a server on an ephemeral loopback port,
// read bounded request bodies, answer JSON. The stand-ins stay readable because the wire details live here.
import * as http from 'node:http';
import * as https from 'node:https';
import { createServer, type AddressInfo } from 'node:net';

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void> | void;

export interface RunningServer {
  /** `https://127.0.0.1:<port>` or `http://…` for the plain servers. */
  url: string;
  port: number;
  stop(): Promise<void>;
}

export interface TlsIdentity {
  certPem: string;
  keyPem: string;
}

/**
 * Answers every request with `handler`; an exception becomes a 500 so a stand-in bug shows up as a
 * failing test, not a hang. `address` defaults to 127.0.0.1.
 */
export async function startServer(handler: Handler, tls?: TlsIdentity, address?: string): Promise<RunningServer> {
  const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    Promise.resolve().then(() => handler(req, res)).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: 'stand_in_failure', error_description: String(error) });
      else res.destroy();
    });
  };
  const server = tls ? https.createServer({ cert: tls.certPem, key: tls.keyPem }, listener) : http.createServer(listener);
  return listen(server, tls ? 'https' : 'http', address);
}

/** Listens on `address` (default 127.0.0.1) with a port the kernel picks, so parallel test files never collide. */
export async function listen(server: http.Server, scheme: 'http' | 'https', address = '127.0.0.1'): Promise<RunningServer> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `${scheme}://${address}:${port}`,
    port,
    stop: () => closeServer(server),
  };
}

/** Closes the listener and every kept-alive connection, so `stop()` returns promptly. */
export async function closeServer(server: http.Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Stand-ins never need large bodies; a cap keeps a runaway client from filling memory. */
const MAX_BODY_BYTES = 1024 * 1024;

export async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Error(`request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Parses an `application/x-www-form-urlencoded` body; repeated keys (ACR's `scope`) stay available through getAll. */
export async function readForm(req: http.IncomingMessage): Promise<URLSearchParams> {
  return new URLSearchParams(await readBody(req));
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** The request URL parsed against the server's own origin (path and query only matter). */
export function requestUrl(req: http.IncomingMessage): URL {
  return new URL(req.url ?? '/', 'http://stand-in.invalid');
}

/** `Basic` credentials from the Authorization header, or undefined when absent or malformed. */
export function basicCredentials(req: http.IncomingMessage): { username: string; password: string } | undefined {
  const match = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export function bearerToken(req: http.IncomingMessage): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
}

export interface ClientResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface ClientRequest {
  method?: string;
  headers?: http.OutgoingHttpHeaders;
  /** Sent as is; use `formBody` for `application/x-www-form-urlencoded`. */
  body?: string;
  /** PEM of the CA to trust (the test CA); the system store is not used. */
  ca?: string;
}

/** One HTTP(S) exchange with the whole response body; for tests and for wiring the environment. */
export async function request(url: string, options: ClientRequest = {}): Promise<ClientResponse> {
  const target = new URL(url);
  const send = target.protocol === 'https:' ? https.request : http.request;
  const headers = { ...options.headers };
  if (options.body !== undefined) headers['content-length'] = Buffer.byteLength(options.body);
  return new Promise((resolve, reject) => {
    const req = send(target, { method: options.method ?? 'GET', headers, ca: options.ca, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A form POST body and its content type, e.g. `request(url, { method: 'POST', ...formBody({…}) })`. */
export function formBody(fields: Record<string, string | string[]>): { headers: http.OutgoingHttpHeaders; body: string } {
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) for (const item of [value].flat()) form.append(name, item);
  return { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() };
}

/**
 * `count` distinct free loopback ports, for servers we start as other processes: all listeners stay
 * open until every port is picked, so no two are the same. Another process could take one before
 * our server binds it; that server then fails fast.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer());
  try {
    return await Promise.all(
      servers.map(
        (server) =>
          new Promise<number>((resolve, reject) => {
            server.once('error', reject);
            server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
          }),
      ),
    );
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}
