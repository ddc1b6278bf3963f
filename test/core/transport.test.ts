// The transport's timeouts and its one retry layer, against small local servers that misbehave on
// purpose: timeouts fire at the values they are given and are named in the message, a stall is one
// warning and one retry, and every try sends the whole body and reads the whole answer.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { HttpError } from '../../src/errors.js';
import { HttpTransport } from '../../src/http/transport.js';
import type { Logger } from '../../src/log.js';

const servers: (http.Server | Server)[] = [];
after(() => {
  for (const server of servers) {
    if (server instanceof http.Server) server.closeAllConnections();
    server.close();
  }
});

/** An http server answering each request in turn with the next handler (the last one repeats). */
async function serve(...handlers: http.RequestListener[]): Promise<{ url: string; requests: { method: string; body: string }[] }> {
  const requests: { method: string; body: string }[] = [];
  const server = http.createServer((req, res) => {
    const handler = handlers[Math.min(requests.length, handlers.length - 1)];
    const record = { method: req.method ?? '', body: '' };
    requests.push(record);
    req.on('data', (chunk: Buffer) => (record.body += chunk.toString()));
    handler(req, res);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/thing`, requests };
}

function transport(options: ConstructorParameters<typeof HttpTransport>[0] = {}): HttpTransport & { warnings: string[] } {
  const warnings: string[] = [];
  const logger: Logger = { info() {}, debug() {}, warn: (line) => warnings.push(line) };
  return Object.assign(new HttpTransport({ logger, retry: { baseDelayMs: 10 }, ...options }), { warnings });
}

const silent: http.RequestListener = () => undefined;

test('the idle timeout fires at its value while waiting for an answer: one warning, one retry, then one error naming host and timeout', async () => {
  const server = await serve(silent);
  const client = transport({ idleTimeoutMs: 500 });
  const started = Date.now();
  await assert.rejects(client.send({ method: 'GET', url: server.url }), (error: Error) => {
    assert.match(error.message, /^Gave up on 127\.0\.0\.1:\d+ \(GET \/thing\) after 2 attempts in [\d.]+ s: 127\.0\.0\.1:\d+ went silent for 0\.5 s \(idle timeout\)\.$/);
    return true;
  });
  const seconds = (Date.now() - started) / 1000;
  assert.ok(seconds >= 1 && seconds < 1.5, `${seconds} s`);
  assert.equal(server.requests.length, 2);
  assert.equal(client.warnings.length, 1);
  assert.match(client.warnings[0], /went silent for 0\.5 s \(idle timeout\); retrying in/);
});

test('the idle timeout also fires in the middle of an answer, and the retry reads the whole answer again', async () => {
  const server = await serve(
    (_req, res) => {
      res.writeHead(200, { 'content-length': '10' });
      res.write('half ');
    },
    (_req, res) => res.end('full reply'),
  );
  const client = transport({ idleTimeoutMs: 300 });
  const response = await client.send({ method: 'GET', url: server.url });
  assert.equal(await response.text(), 'full reply');
  assert.equal(server.requests.length, 2);
  assert.match(client.warnings.join('\n'), /went silent for 0\.3 s \(idle timeout\)/);
});

test('the connect timeout covers the TLS handshake and fires at its value', async () => {
  // Takes the TCP connection and never says a word of TLS.
  const sockets: Socket[] = [];
  const blackHole = createServer((socket) => sockets.push(socket));
  servers.push(blackHole);
  await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
  const port = (blackHole.address() as AddressInfo).port;
  const client = transport({ connectTimeoutMs: 400, idleTimeoutMs: 10_000 });
  const started = Date.now();
  await assert.rejects(client.send({ method: 'GET', url: `https://127.0.0.1:${port}/v2/`, endpoint: 'the registry' }), (error: Error) => {
    assert.match(error.message, /^Gave up on the registry 127\.0\.0\.1:\d+ \(GET \/v2\/\) after 2 attempts .*Cannot connect to 127\.0\.0\.1:\d+ within 0\.4 s \(connect timeout\)/);
    return true;
  });
  const seconds = (Date.now() - started) / 1000;
  assert.ok(seconds >= 0.8 && seconds < 1.3, `${seconds} s`);
  for (const socket of sockets) socket.destroy();
});

test('408, 429 and 5xx are retried, honouring Retry-After, and every try sends the whole body again', async () => {
  let calls = 0;
  const server = await serve((req, res) => {
    req.resume();
    req.on('end', () => {
      calls++;
      if (calls === 1) res.writeHead(503, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}');
      else if (calls === 2) res.writeHead(429, { 'retry-after': '1' }).end();
      else res.end('stored');
    });
  });
  const client = transport();
  const started = Date.now();
  const response = await client.send({ method: 'PUT', url: server.url, headers: { 'content-length': '7' }, body: () => Readable.from([Buffer.from('payload')]) });
  assert.equal(response.status, 200);
  assert.ok(Date.now() - started >= 1000, 'waited as Retry-After asked');
  assert.deepEqual(server.requests.map((request) => request.body), ['payload', 'payload', 'payload']);
  assert.match(client.warnings[0], /answered PUT \/thing with HTTP 503 \(UNAVAILABLE: try later\); retrying/);
});

test('an answer about the request itself is returned at once; `retry: false` leaves transient failures to the caller', async () => {
  const notFound = await serve((_req, res) => res.writeHead(404).end());
  const client = transport();
  assert.equal((await client.send({ method: 'GET', url: notFound.url })).status, 404);
  assert.equal(notFound.requests.length, 1);

  const unavailable = await serve((_req, res) => res.writeHead(503).end());
  await assert.rejects(client.send({ method: 'GET', url: unavailable.url, retry: false }), (error: Error) => error instanceof HttpError && error.status === 503);
  assert.equal(unavailable.requests.length, 1);
});

test('statuses an endpoint uses for "not yet" are retried when the request says so', async () => {
  let calls = 0;
  const server = await serve((_req, res) => res.writeHead(++calls < 3 ? 404 : 200).end('{}'));
  const response = await transport().send({ method: 'GET', url: server.url, retryStatuses: [404, 410] });
  assert.equal(response.status, 200);
  assert.equal(server.requests.length, 3);
});
