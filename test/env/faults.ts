// A TLS reverse proxy in front of the registry (or any https server) that can break chosen requests:
// reset the connection part-way through an upload, answer 429/5xx, answer 401 as if the token
// expired, or take the request and never answer. It can also drop a connection every N bytes of
// uploads, as a front end that buffers request bodies does (nginx's `proxy_request_buffering`,
// Azure Application Gateway): the broken request never reaches the registry. Otherwise bodies stream
// through in both directions (nothing is buffered), and the Host header is passed on unchanged so
// the registry's upload Locations point back at the proxy.
import * as http from 'node:http';
import * as https from 'node:https';
import { randomUUID } from 'node:crypto';
import type { TestCa } from './ca.js';
import { closeServer, listen } from './http.js';

export interface FaultMatch {
  /** e.g. `PATCH`; default any. */
  method?: string;
  /** Tested against the request path with its query; default any. */
  pathPattern?: RegExp;
  /** Fire on the nth request (1-based) that matches method and path; default 1. */
  nth?: number;
  /** How many matching requests it acts on from the nth on; default 1, `Infinity` for all. */
  times?: number;
}

export type FaultAction =
  /** Forward this many request-body bytes (default 0), then drop both connections without an answer. */
  | { kind: 'reset'; afterRequestBodyBytes?: number }
  /** Answer instead of the registry, e.g. `{ status: 429, headers: { 'Retry-After': '1' } }`. */
  | { kind: 'respond'; status: number; headers?: Record<string, string>; body?: string }
  /** Answer the registry's own 401 challenge for this request, as when a token expired mid-push. */
  | { kind: 'expiredToken' }
  /** Take the request (its body included) and never answer, as an endpoint that hangs. */
  | { kind: 'stall' }
  /** Forward the request, relay the answer's headers and this many bytes of its body, then drop the connection (a download cut short). */
  | { kind: 'cutResponse'; afterResponseBodyBytes: number };

export type Fault = FaultMatch & FaultAction;

export interface InjectedFault {
  /** True once the fault acted on a request. */
  readonly fired: boolean;
  /** Requests it acted on so far. */
  readonly count: number;
  /** Stops it acting on further requests. */
  disarm(): void;
}

export interface PeriodicReset {
  /** Connections dropped so far. */
  readonly resets: number;
  stop(): void;
}

export interface ProxiedRequest {
  method: string;
  /** Path and query. */
  path: string;
  /** What the client got; 0 when the connection was reset. */
  status: number;
  /** Request-body bytes received from the client. */
  bytesIn: number;
  /** The fault that acted on this request, if any. */
  fault?: FaultAction['kind'];
}

export interface StartFaultProxyOptions {
  ca: TestCa;
  /**
   * The upstream registry, e.g. `https://127.0.0.1:5000`; its certificate must come from `ca`. A
   * function when the registry starts after the proxy (its realm names the proxy).
   */
  target: string | (() => string);
  /**
   * Serve `/oauth2/*` from this token server (its certificate from `ca`), as ACR serves its token
   * endpoints on the login server itself. Clients that insist on a realm on the registry's own
   * host:port (Trivy, for loopback registries) need it. Default: no such route.
   */
  tokenServer?: string;
}

export interface FaultProxy {
  /** `127.0.0.1:<port>`: use it as the registry host to go through the proxy. */
  host: string;
  url: string;
  /** Arms a fault; it acts on its nth matching request after this call (and `times` in all). */
  inject(fault: Fault): InjectedFault;
  /**
   * From now on, buffers each request body before forwarding it and drops the client's connection
   * each time another `bytes` of request bodies went through, counted across connections. The
   * request that was cut never reaches the registry.
   */
  resetEvery(bytes: number): PeriodicReset;
  requests: ProxiedRequest[];
  /** TLS connections clients opened to the proxy. */
  readonly connections: number;
  stop(): Promise<void>;
}

// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are not forwarded.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

/** End-to-end headers from raw pairs, keeping repeats (two WWW-Authenticate lines stay two). */
function endToEndHeaders(rawHeaders: string[]): Map<string, string[]> {
  const headers = new Map<string, string[]>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    if (HOP_BY_HOP.has(name.toLowerCase())) continue;
    headers.set(name, [...(headers.get(name) ?? []), rawHeaders[i + 1]]);
  }
  return headers;
}

function outgoingHeaders(rawHeaders: string[]): http.OutgoingHttpHeaders {
  return Object.fromEntries([...endToEndHeaders(rawHeaders)].map(([name, values]) => [name, values.length === 1 ? values[0] : values]));
}

interface ArmedFault {
  fault: Fault;
  matches: number;
  count: number;
  disarmed: boolean;
}

export async function startFaultProxy(options: StartFaultProxyOptions): Promise<FaultProxy> {
  const upstreamFor = (req: http.IncomingMessage) =>
    new URL(options.tokenServer && req.url?.startsWith('/oauth2/') ? options.tokenServer : typeof options.target === 'string' ? options.target : options.target());
  const tls = await options.ca.issue(`fault-proxy-${randomUUID()}`, ['127.0.0.1', 'localhost']);
  const upstreamAgent = new https.Agent({ keepAlive: true, ca: options.ca.caCertPem });
  const armed: ArmedFault[] = [];
  const requests: ProxiedRequest[] = [];

  let connections = 0;
  let periodic: { every: number; next: number; seen: number; resets: number } | undefined;

  /** The first armed fault for which this request is a match it acts on; it is disarmed after `times`. */
  function faultFor(req: http.IncomingMessage): Fault | undefined {
    for (const entry of armed) {
      const { method, pathPattern, nth = 1, times = 1 } = entry.fault;
      if (entry.disarmed || entry.count >= times) continue;
      if (method !== undefined && method.toUpperCase() !== req.method) continue;
      if (pathPattern !== undefined && !pathPattern.test(req.url ?? '')) continue;
      entry.matches += 1;
      if (entry.matches >= nth) {
        entry.count += 1;
        return entry.fault;
      }
    }
    return undefined;
  }

  /** Store and forward: the body is read whole first; a connection dropped on the way forwards nothing. */
  function forwardBuffered(req: http.IncomingMessage, res: http.ServerResponse, record: ProxiedRequest, cut: NonNullable<typeof periodic>): void {
    const chunks: Buffer[] = [];
    let dropped = false;
    req.on('data', (chunk: Buffer) => {
      if (dropped) return;
      cut.seen += chunk.length;
      if (cut.seen >= cut.next) {
        dropped = true;
        cut.next += cut.every;
        cut.resets += 1;
        record.status = 0;
        record.fault = 'reset';
        req.socket.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (dropped) return;
      const body = Buffer.concat(chunks);
      const headers = outgoingHeaders(req.rawHeaders);
      for (const name of Object.keys(headers)) if (/^content-length$/i.test(name)) delete headers[name];
      headers['Content-Length'] = String(body.length);
      const upstream = upstreamRequest(req, headers, (upstreamRes) => relayResponse(upstreamRes, res, record));
      upstream.on('error', (error) => badGateway(res, record, error));
      upstream.end(body);
    });
  }

  function upstreamRequest(req: http.IncomingMessage, headers: http.OutgoingHttpHeaders, onResponse: (res: http.IncomingMessage) => void): http.ClientRequest {
    const target = upstreamFor(req);
    return https.request({
      protocol: target.protocol, hostname: target.hostname, port: target.port,
      method: req.method, path: req.url, headers, agent: upstreamAgent,
    }, onResponse);
  }

  function relayResponse(upstream: http.IncomingMessage, res: http.ServerResponse, record: ProxiedRequest, cutAfter?: number): void {
    record.status = upstream.statusCode ?? 502;
    res.writeHead(record.status, outgoingHeaders(upstream.rawHeaders));
    if (cutAfter === undefined) {
      upstream.pipe(res);
      return;
    }
    let relayed = 0;
    upstream.on('data', (chunk: Buffer) => {
      const part = chunk.subarray(0, Math.max(0, cutAfter - relayed));
      relayed += part.length;
      if (part.length > 0) res.write(part);
      if (relayed >= cutAfter) {
        upstream.destroy();
        res.socket?.destroy();
      }
    });
    upstream.on('end', () => res.end());
  }

  function badGateway(res: http.ServerResponse, record: ProxiedRequest, error: Error): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    record.status = 502;
    res.writeHead(502, { 'Content-Type': 'text/plain' });
    res.end(`fault proxy: upstream failed: ${error.message}`);
  }

  /** Forwards the request, streaming the body; with `cutAfter`, drops both sides once that many body bytes went through. */
  function forward(req: http.IncomingMessage, res: http.ServerResponse, record: ProxiedRequest, cutAfter?: number): void {
    const upstream = upstreamRequest(req, outgoingHeaders(req.rawHeaders), (upstreamRes) => relayResponse(upstreamRes, res, record));
    upstream.on('error', (error) => badGateway(res, record, error));
    req.on('close', () => {
      if (!req.complete) upstream.destroy();
    });
    if (cutAfter === undefined) {
      req.pipe(upstream);
      return;
    }
    const reset = () => {
      record.status = 0;
      upstream.destroy();
      req.socket.destroy();
    };
    if (cutAfter === 0) return reset();
    let forwarded = 0;
    req.on('data', (chunk: Buffer) => {
      const room = cutAfter - forwarded;
      const part = chunk.length >= room ? chunk.subarray(0, room) : chunk;
      forwarded += part.length;
      // Respect the upstream's backpressure like pipe() would.
      if (!upstream.write(part)) {
        req.pause();
        upstream.once('drain', () => req.resume());
      }
      if (forwarded >= cutAfter) reset();
    });
    req.on('end', () => upstream.end());
  }

  /** Asks the registry itself for the challenge of this method and path (no credentials, no body). */
  function answerWithChallenge(req: http.IncomingMessage, res: http.ServerResponse, record: ProxiedRequest): void {
    req.resume();
    const headers = outgoingHeaders(req.rawHeaders);
    for (const name of Object.keys(headers)) {
      if (/^(authorization|content-length|content-type|content-range)$/i.test(name)) delete headers[name];
    }
    headers['Content-Length'] = '0';
    const probe = upstreamRequest(req, headers, (upstreamRes) => {
      if (upstreamRes.statusCode !== 401) {
        upstreamRes.resume();
        badGateway(res, record, new Error(`registry answered an anonymous ${req.method ?? ''} with ${upstreamRes.statusCode ?? 0}, not a 401 challenge`));
        return;
      }
      relayResponse(upstreamRes, res, record);
    });
    probe.on('error', (error) => badGateway(res, record, error));
    probe.end();
  }

  const server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const record: ProxiedRequest = { method: req.method ?? '', path: req.url ?? '', status: 0, bytesIn: 0 };
    requests.push(record);
    req.on('data', (chunk: Buffer) => {
      record.bytesIn += chunk.length;
    });
    const fault = faultFor(req);
    if (fault) record.fault = fault.kind;
    switch (fault?.kind) {
      case undefined:
        return periodic ? forwardBuffered(req, res, record, periodic) : forward(req, res, record);
      case 'reset':
        return forward(req, res, record, fault.afterRequestBodyBytes ?? 0);
      case 'respond': {
        req.resume();
        record.status = fault.status;
        const body = fault.body ?? '';
        res.writeHead(fault.status, { ...fault.headers, 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      case 'expiredToken':
        return answerWithChallenge(req, res, record);
      case 'stall':
        req.resume();
        return;
      case 'cutResponse': {
        const upstream = upstreamRequest(req, outgoingHeaders(req.rawHeaders), (upstreamRes) => relayResponse(upstreamRes, res, record, fault.afterResponseBodyBytes));
        upstream.on('error', (error) => badGateway(res, record, error));
        req.pipe(upstream);
        return;
      }
    }
  });
  server.on('secureConnection', () => {
    connections += 1;
  });
  const running = await listen(server, 'https');

  return {
    host: `127.0.0.1:${running.port}`,
    url: running.url,
    inject(fault) {
      const entry: ArmedFault = { fault, matches: 0, count: 0, disarmed: false };
      armed.push(entry);
      return {
        get fired() {
          return entry.count > 0;
        },
        get count() {
          return entry.count;
        },
        disarm: () => {
          entry.disarmed = true;
        },
      };
    },
    resetEvery(bytes) {
      const state = { every: bytes, next: bytes, seen: 0, resets: 0 };
      periodic = state;
      return {
        get resets() {
          return state.resets;
        },
        stop: () => {
          if (periodic === state) periodic = undefined;
        },
      };
    },
    requests,
    get connections() {
      return connections;
    },
    stop: async () => {
      await closeServer(server);
      upstreamAgent.destroy();
    },
  };
}
