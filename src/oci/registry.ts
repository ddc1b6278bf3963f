import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { AuthenticationError, ContentError, HttpError, UserError, errorMessage } from '../errors.js';
import { rejectTransient } from '../http/status.js';
import type { HttpHeaders, HttpRequest, HttpResponse, HttpTransport } from '../http/transport.js';
import type { Logger } from '../log.js';
import { isTransient, retry, type RetryOptions } from '../http/retry.js';
import { tap } from '../streams.js';
import { parseBearerChallenge, type BearerChallenge } from './challenge.js';
import type { BlobContent } from './content.js';
import type { RegistryTokenProvider } from './tokens.js';

export interface RegistryClientOptions {
  /** Login server, `host` or `host:port`; always https. */
  host: string;
  http: HttpTransport;
  tokens: RegistryTokenProvider;
  logger: Logger;
  /**
   * Bytes per request of a blob read from disk. Uploads go POST → PATCH… → PUT with exact
   * lengths, which every registry accepts (ACR is reported to refuse chunked transfer encoding).
   * ACR is also reported, unconfirmed, to refuse single bodies over about 20 MB: a 413 halves the
   * size for the rest of the push, down to 4 MiB. Default 32 MiB.
   */
  chunkSize?: number;
  /** Bytes per PATCH of a blob produced on the fly; two per upload are held in memory. Default 2 MiB. */
  streamChunkSize?: number;
  /** Backoff of every retried request; see RetryOptions for defaults. */
  retry?: RetryOptions;
}

interface RegistryErrorBody {
  errors?: { code?: string; message?: string; detail?: unknown }[];
}

/** The registry HTTP API (distribution-spec) for one login server, with token auth folded in. */
export class RegistryClient {
  readonly host: string;
  private readonly baseUrl: URL;
  private chunkSize: number;
  private readonly streamChunkSize: number;
  private knownChallenge?: Promise<BearerChallenge | undefined>;

  constructor(private readonly options: RegistryClientOptions) {
    this.host = options.host;
    this.baseUrl = new URL(`https://${options.host}`);
    this.chunkSize = options.chunkSize ?? 32 * 1024 * 1024;
    this.streamChunkSize = options.streamChunkSize ?? 2 * 1024 * 1024;
  }

  /** HEAD the blob. ACR answers 307 (to its data endpoint) for blobs it has; that counts as present. */
  async blobExists(repository: string, digest: string): Promise<boolean> {
    const response = await this.retrying(() =>
      this.send(repository, () => ({ method: 'HEAD', url: this.url(`/v2/${repository}/blobs/${digest}`), followRedirects: false })),
    );
    await response.discard();
    if (response.status === 200 || response.status === 307) return true;
    // Only a 404 means "absent"; anything else is an answer we must not guess about.
    if (response.status === 404) return false;
    throw await this.failure(response, `checking blob ${digest} in ${repository}`);
  }

  /**
   * Uploads a blob whose digest is known, streaming byte ranges from disk. The registry checks the
   * bytes against the digest on commit (DIGEST_INVALID otherwise), so they are not hashed twice.
   * Retries restart the blob from its first byte.
   */
  async uploadBlob(repository: string, blob: BlobContent, onProgress: (deltaBytes: number) => void): Promise<void> {
    for (;;) {
      const chunks = [...rangeChunks(blob, this.chunkSize)];
      // The digest is known, so the last chunk can ride on the closing PUT: one request fewer per blob.
      const last = chunks.pop();
      try {
        await this.retryingUpload(onProgress, (onBytes) => this.uploadChunks(repository, chunks, () => blob.digest, onBytes, last));
        return;
      } catch (error) {
        if (!(error instanceof HttpError && error.status === 413 && this.chunkSize > MIN_CHUNK_SIZE)) throw error;
        this.chunkSize /= 2;
        this.options.logger.warn(`${this.host} refused a request body as too large (HTTP 413); sending ${this.chunkSize / (1024 * 1024)} MiB at a time from now on`);
      }
    }
  }

  /**
   * Uploads bytes whose digest is only known once they have all been produced (a layer being
   * compressed on the fly), hashing them on the way out. Each try calls `open` anew.
   */
  async uploadStream(repository: string, open: () => Readable, onProgress: (deltaBytes: number) => void): Promise<{ digest: string; size: number }> {
    return this.retryingUpload(onProgress, async (onBytes) => {
      const hash = createHash('sha256');
      let size = 0;
      const chunks = bufferedChunks(open(), this.streamChunkSize, (chunk) => {
        hash.update(chunk);
        size += chunk.length;
      });
      let digest: string | undefined;
      await this.uploadChunks(repository, chunks, () => (digest = `sha256:${hash.digest('hex')}`), onBytes);
      return { digest: digest!, size };
    });
  }

  /** GETs a manifest by tag or digest; undefined when the registry has none under that name. */
  async getManifest(repository: string, reference: string, accept: string[]): Promise<{ mediaType: string; bytes: Buffer } | undefined> {
    const response = await this.retrying(() =>
      this.send(repository, () => ({ method: 'GET', url: this.url(`/v2/${repository}/manifests/${reference}`), headers: { accept: accept.join(', ') } })),
    );
    if (response.status === 404) {
      await response.discard();
      return undefined;
    }
    if (response.status !== 200) throw await this.failure(response, `reading manifest ${reference} of ${repository}`);
    return { mediaType: response.headers['content-type'] ?? '', bytes: Buffer.from(await response.text(), 'utf8') };
  }

  /** GETs a small blob (an image config) into memory, following ACR's redirect to its data endpoint. */
  async getSmallBlob(repository: string, digest: string): Promise<Buffer> {
    const response = await this.retrying(() => this.send(repository, () => ({ method: 'GET', url: this.url(`/v2/${repository}/blobs/${digest}`) })));
    if (response.status !== 200) throw await this.failure(response, `reading blob ${digest} of ${repository}`);
    return Buffer.from(await response.text(), 'utf8');
  }

  /** PUTs a manifest under a tag or digest and checks the registry computed the digest we did. */
  async putManifest(repository: string, reference: string, manifest: { mediaType: string; bytes: Buffer; digest: string }): Promise<void> {
    const response = await this.retrying(() =>
      this.send(repository, () => ({
        method: 'PUT',
        url: this.url(`/v2/${repository}/manifests/${reference}`),
        headers: { 'content-type': manifest.mediaType, 'content-length': String(manifest.bytes.length) },
        body: manifest.bytes,
      })),
    );
    if (response.status !== 201 && response.status !== 200) throw await this.failure(response, `storing manifest ${reference} in ${repository}`);
    await response.discard();
    const stored = response.headers['docker-content-digest'];
    if (stored && stored !== manifest.digest) {
      throw new ContentError(`The registry stored manifest ${reference} of ${repository} as ${stored}, not ${manifest.digest}: it rewrote the manifest.`);
    }
  }

  /** Progress is reported as bytes land; a failed try takes its bytes back before the next. */
  private retryingUpload<T>(onProgress: (deltaBytes: number) => void, upload: (onBytes: (bytes: number) => void) => Promise<T>): Promise<T> {
    return this.retrying(async () => {
      let sent = 0;
      try {
        return await upload((bytes) => {
          sent += bytes;
          onProgress(bytes);
        });
      } catch (error) {
        onProgress(-sent);
        throw error;
      }
    });
  }

  /**
   * POST, a PATCH per chunk with its exact length, then PUT with the digest and, when given, the
   * final chunk as its body (distribution-spec "chunked upload"; one chunk and no PATCH is the
   * spec's "POST then PUT" monolithic upload).
   */
  private async uploadChunks(
    repository: string,
    chunks: Iterable<UploadChunk> | AsyncIterable<UploadChunk>,
    digest: () => string,
    onBytes: (bytes: number) => void,
    finalChunk?: UploadChunk,
  ): Promise<void> {
    const started = await this.send(repository, () => ({ method: 'POST', url: this.url(`/v2/${repository}/blobs/uploads/`), headers: { 'content-length': '0' } }));
    if (started.status !== 202) throw await this.failure(started, `starting an upload to ${repository}`);
    await started.discard();
    let location = this.location(started);
    // Bytes count as they leave, so a long request shows progress; a body sent again after a 401 counts again.
    const counted = (chunk: UploadChunk): Readable | Buffer => {
      const body = chunk.body();
      if (Buffer.isBuffer(body)) {
        onBytes(body.length);
        return body;
      }
      return body.pipe(tap((piece) => onBytes(piece.length)));
    };
    let offset = 0;
    for await (const chunk of chunks) {
      const response = await this.send(repository, () => ({
        method: 'PATCH',
        url: location,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(chunk.length), 'content-range': `${offset}-${offset + chunk.length - 1}` },
        body: counted(chunk),
      }));
      if (response.status !== 202) throw await this.failure(response, `uploading to ${repository}`);
      await response.discard();
      offset += chunk.length;
      location = this.location(response);
    }
    const committed = new URL(location);
    committed.searchParams.set('digest', digest());
    const headers: HttpHeaders = finalChunk ? { 'content-type': 'application/octet-stream', 'content-length': String(finalChunk.length) } : { 'content-length': '0' };
    const done = await this.send(repository, () => ({ method: 'PUT', url: committed, headers, body: finalChunk && counted(finalChunk) }));
    if (done.status !== 201) throw await this.failure(done, `committing ${committed.searchParams.get('digest')} to ${repository}`);
    await done.discard();
  }

  private location(response: HttpResponse): URL {
    const location = response.headers.location;
    if (!location) throw new HttpError(`The registry answered an upload request without a Location header (HTTP ${response.status}).`, response.status);
    // Location may be relative; its query string (upload state on some registries) is kept.
    return new URL(location, this.baseUrl);
  }

  private url(path: string): URL {
    return new URL(path, this.baseUrl);
  }

  private async retrying<T>(operation: () => Promise<T>): Promise<T> {
    const attempts = this.options.retry?.attempts ?? 5;
    try {
      return await retry(operation, {
        ...this.options.retry,
        attempts,
        onRetry: (error, attempt, delayMs) => this.options.logger.warn(`${errorMessage(error)}; retrying in ${(delayMs / 1000).toFixed(1)} s (attempt ${attempt + 1} of ${attempts})`),
      });
    } catch (error) {
      if (!isTransient(error)) throw error;
      throw new UserError(`Gave up on ${this.host} after ${attempts} attempts: ${errorMessage(error)}. The registry or the network kept failing; run the task again later.`, { cause: error });
    }
  }

  /**
   * Sends a request with a bearer token for `repository:<name>:pull,push`. A 401 means the token
   * expired or was revoked: the token is minted again once and the request repeated (with a
   * fresh body), as the ACR docs ask. A second 401 is a permission problem.
   */
  private async send(repository: string, build: () => HttpRequest): Promise<HttpResponse> {
    const scopes = [`repository:${repository}:pull,push`];
    let challenge = await this.challenge();
    for (let attempt = 1; ; attempt++) {
      const request = build();
      const headers: HttpHeaders = { ...request.headers };
      if (challenge) headers.authorization = `Bearer ${await this.options.tokens.accessToken(challenge, scopes)}`;
      const response = await rejectTransient(await this.options.http.send({ ...request, headers }), `${this.host} ${request.method}`);
      if (response.status !== 401) return response;
      const fresh = parseBearerChallenge(response.headers['www-authenticate']);
      if (attempt >= 2 || !fresh) {
        const reason = fresh?.error === 'insufficient_scope' ? ' (insufficient_scope)' : '';
        await response.discard();
        throw new AuthenticationError(
          `The registry ${this.host} refused ${request.method} on ${repository}${reason}: the identity may not push there. Give it the AcrPush role on the registry (or a token with write access to the repository).`,
        );
      }
      await response.discard();
      this.options.tokens.invalidate(fresh);
      challenge = fresh;
    }
  }

  /**
   * Asks `/v2/` once for the registry's challenge, so the first real request already carries a
   * token; undefined when the registry lets anyone in.
   */
  challenge(): Promise<BearerChallenge | undefined> {
    this.knownChallenge ??= retry(async () => {
      const response = await rejectTransient(await this.options.http.send({ method: 'GET', url: this.url('/v2/') }), `${this.host} GET /v2/`);
      await response.discard();
      if (response.status === 200) return undefined;
      const challenge = parseBearerChallenge(response.headers['www-authenticate']);
      if (response.status === 401 && challenge) return challenge;
      if (response.status === 404) throw new UserError(`${this.host} does not serve the registry API (GET /v2/ answered 404): check the registry login server.`);
      throw new UserError(`${this.host} answered GET /v2/ with HTTP ${response.status} and no Bearer challenge; it is not a registry this task can log in to.`);
    }, this.options.retry).catch((error: unknown) => {
      this.knownChallenge = undefined;
      throw error;
    });
    return this.knownChallenge;
  }

  private async failure(response: HttpResponse, doing: string): Promise<UserError> {
    const text = await response.text().catch(() => '');
    let detail = '';
    try {
      const first = (JSON.parse(text) as RegistryErrorBody).errors?.[0];
      if (first) detail = `${first.code ?? ''}${first.message ? `: ${first.message}` : ''}`;
    } catch {
      detail = text.slice(0, 200);
    }
    if (response.status === 403) {
      return new AuthenticationError(`The registry ${this.host} denied ${doing} (HTTP 403 ${detail}): give the identity the AcrPush role, or check the registry's network rules.`);
    }
    if (detail.startsWith('DIGEST_INVALID')) {
      return new ContentError(`The content does not match its digest while ${doing} (${detail}): the image on disk is corrupt; build or save it again.`);
    }
    return new HttpError(`The registry ${this.host} failed ${doing} (HTTP ${response.status}${detail ? ` ${detail}` : ''}).`, response.status);
  }
}

const MIN_CHUNK_SIZE = 4 * 1024 * 1024;

/** One PATCH worth of bytes; `body` is called again when the PATCH has to be re-sent. */
interface UploadChunk {
  length: number;
  body(): Readable | Buffer;
}

function* rangeChunks(blob: BlobContent, chunkSize: number): Generator<UploadChunk> {
  for (let offset = 0; offset < blob.size; offset += chunkSize) {
    const end = Math.min(blob.size, offset + chunkSize);
    yield { length: end - offset, body: () => blob.open(offset, end) };
  }
}

/**
 * Cuts a stream into chunks of about `chunkSize` bytes, showing each piece to `observe` once, in
 * order. The next chunk is read while the caller sends the current one, so the producer (a gzip
 * stream) keeps working during each PATCH; at most two chunks per upload are held in memory.
 */
async function* bufferedChunks(source: Readable, chunkSize: number, observe: (piece: Buffer) => void): AsyncGenerator<UploadChunk> {
  const pieces = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const collect = async (): Promise<UploadChunk | undefined> => {
    const chunk: Buffer[] = [];
    let length = 0;
    while (length < chunkSize) {
      const next = await pieces.next();
      if (next.done) break;
      chunk.push(next.value);
      length += next.value.length;
    }
    chunk.forEach(observe);
    return length > 0 ? { length, body: () => Readable.from(chunk, { objectMode: false }) } : undefined;
  };
  try {
    let upcoming = collect();
    // Until the caller awaits it, a failed read must not count as an unhandled rejection.
    upcoming.catch(() => undefined);
    for (let chunk = await upcoming; chunk; chunk = await upcoming) {
      upcoming = collect();
      upcoming.catch(() => undefined);
      yield chunk;
    }
  } finally {
    source.destroy();
  }
}
