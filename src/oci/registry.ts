import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { AuthenticationError, ContentError, HttpError, UserError, errorMessage } from '../errors.js';
import { rejectTransient } from '../http/status.js';
import type { HttpHeaders, HttpRequest, HttpResponse, HttpTransport } from '../http/transport.js';
import type { Logger } from '../log.js';
import { isTransient, retry, type RetryOptions } from '../retry.js';
import { tap } from '../streams.js';
import { parseBearerChallenge, type BearerChallenge } from '../acr/challenge.js';
import type { RegistryTokenProvider } from '../acr/exchange.js';

/** Bytes to upload, readable again for every attempt. `open` takes a half-open byte range. */
export interface BlobContent {
  digest: string;
  size: number;
  open(start: number, end: number): Readable;
}

export interface RegistryClientOptions {
  /** Login server, `host` or `host:port`; always https. */
  host: string;
  http: HttpTransport;
  tokens: RegistryTokenProvider;
  logger: Logger;
  /**
   * Bytes per PATCH. Uploads go POST → PATCH… → PUT with exact lengths, which every registry
   * accepts; ACR is reported to refuse chunked transfer and very large single bodies. Default 32 MiB.
   */
  chunkSize?: number;
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
  private readonly chunkSize: number;
  private challenge?: Promise<BearerChallenge | undefined>;

  constructor(private readonly options: RegistryClientOptions) {
    this.host = options.host;
    this.baseUrl = new URL(`https://${options.host}`);
    this.chunkSize = options.chunkSize ?? 32 * 1024 * 1024;
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
   * Uploads one blob, hashing the bytes as they go out so a blob whose content does not match its
   * digest is abandoned before it is committed. Retries restart the blob from its first byte.
   */
  async uploadBlob(repository: string, blob: BlobContent, onProgress: (deltaBytes: number) => void): Promise<void> {
    await this.retrying(async () => {
      let sent = 0;
      try {
        await this.uploadOnce(repository, blob, (bytes) => {
          sent += bytes;
          onProgress(bytes);
        });
      } catch (error) {
        onProgress(-sent);
        throw error;
      }
    });
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

  private async uploadOnce(repository: string, blob: BlobContent, onBytes: (bytes: number) => void): Promise<void> {
    const started = await this.send(repository, () => ({
      method: 'POST',
      url: this.url(`/v2/${repository}/blobs/uploads/`),
      headers: { 'content-length': '0' },
    }));
    if (started.status !== 202) throw await this.failure(started, `starting an upload to ${repository}`);
    await started.discard();
    let location = this.location(started);
    let hash = createHash('sha256');
    for (let offset = 0; offset < blob.size; offset += this.chunkSize) {
      const end = Math.min(blob.size, offset + this.chunkSize);
      // `send` may send the chunk twice (after a 401); each try hashes into its own copy.
      let attemptHash = hash;
      const chunk = await this.send(repository, () => {
        attemptHash = hash.copy();
        return {
          method: 'PATCH',
          url: location,
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - offset), 'content-range': `${offset}-${end - 1}` },
          body: blob.open(offset, end).pipe(tap((bytes) => attemptHash.update(bytes))),
        };
      });
      if (chunk.status !== 202) throw await this.failure(chunk, `uploading ${blob.digest} to ${repository}`);
      await chunk.discard();
      hash = attemptHash;
      onBytes(end - offset);
      location = this.location(chunk);
    }
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== blob.digest) {
      await this.send(repository, () => ({ method: 'DELETE', url: location })).then((r) => r.discard()).catch(() => undefined);
      throw new ContentError(`Blob ${blob.digest} does not match its digest (its bytes hash to ${actual}): the image on disk is corrupt; build or save it again.`);
    }
    const committed = new URL(location);
    committed.searchParams.set('digest', blob.digest);
    const done = await this.send(repository, () => ({ method: 'PUT', url: committed, headers: { 'content-length': '0' } }));
    if (done.status !== 201) throw await this.failure(done, `committing ${blob.digest} to ${repository}`);
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
    let challenge = await this.learnChallenge();
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

  /** Asks `/v2/` once for the registry's challenge, so the first real request already carries a token. */
  private learnChallenge(): Promise<BearerChallenge | undefined> {
    this.challenge ??= retry(async () => {
      const response = await rejectTransient(await this.options.http.send({ method: 'GET', url: this.url('/v2/') }), `${this.host} GET /v2/`);
      await response.discard();
      if (response.status === 200) return undefined;
      const challenge = parseBearerChallenge(response.headers['www-authenticate']);
      if (response.status === 401 && challenge) return challenge;
      if (response.status === 404) throw new UserError(`${this.host} does not serve the registry API (GET /v2/ answered 404): check the registry login server.`);
      throw new UserError(`${this.host} answered GET /v2/ with HTTP ${response.status} and no Bearer challenge; it is not a registry this task can log in to.`);
    }, this.options.retry).catch((error: unknown) => {
      this.challenge = undefined;
      throw error;
    });
    return this.challenge;
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
      return new ContentError(`The registry refused the content while ${doing} (${detail}): the image on disk is corrupt; build or save it again.`);
    }
    return new HttpError(`The registry ${this.host} failed ${doing} (HTTP ${response.status}${detail ? ` ${detail}` : ''}).`, response.status);
  }
}
