import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { AuthenticationError, ContentError, HttpError, UserError } from '../errors.js';
import { errorDetail, type HttpHeaders, type HttpRequest, type HttpResponse, type HttpTransport, type StreamedResponse } from '../http/transport.js';
import { isTransient, type RetryAttempt } from '../http/retry.js';
import type { Logger } from '../log.js';
import { tap } from '../streams.js';
import { parseBearerChallenge, type BearerChallenge } from './challenge.js';
import type { BlobContent, RenderedManifest } from './content.js';
import { OCI_INDEX, type Descriptor, type ImageIndex } from './mediaTypes.js';
import type { RegistryTokenProvider } from './tokens.js';

export interface RegistryClientOptions {
  /** Login server, `host` or `host:port`; always https. */
  host: string;
  http: HttpTransport;
  /** Answers the registry's bearer challenges: ACR's exchange, a registry user, or anonymous (RealmTokenProvider). */
  tokens: RegistryTokenProvider;
  logger: Logger;
}

/** What a repository handle may do: its requests carry a token for `pull`, or for `pull,push`. */
export type RepositoryAccess = 'pull' | 'push';

/** A manifest as a registry serves it: the exact bytes, their digest and media type. */
export type StoredManifest = RenderedManifest;

const MiB = 1024 * 1024;
/**
 * Bytes per request of a blob read from disk. Uploads go POST → PATCH… → PUT with exact lengths,
 * which every registry accepts (ACR is reported to refuse chunked transfer encoding). ACR is also
 * reported, unconfirmed, to refuse single bodies over about 20 MB: a 413 halves the size for the
 * rest of the push, down to MIN_CHUNK_SIZE.
 */
const CHUNK_SIZE = 32 * MiB;
const MIN_CHUNK_SIZE = 4 * MiB;
/** Bytes per PATCH of a blob produced on the fly; two per upload are held in memory. */
const STREAM_CHUNK_SIZE = 2 * MiB;

const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
];
// Manifests are read into memory; the distribution-spec lets registries refuse anything over 4 MiB.
const MAX_MANIFEST_BYTES = 4 * MiB;

/**
 * The registry HTTP API (distribution-spec) of one login server, with token auth folded in. Work
 * goes through repository handles, whose requests carry a token for their scopes; a request that
 * needs more (a cross-repository mount: `repository:<from>:pull` too) asks `request` for them.
 */
export class RegistryClient {
  readonly host: string;
  private readonly baseUrl: URL;
  // Halved for the rest of the push when a registry refuses a body as too large.
  chunkSize = CHUNK_SIZE;
  private knownChallenge?: Promise<BearerChallenge | undefined>;

  constructor(readonly options: RegistryClientOptions) {
    this.host = options.host;
    this.baseUrl = new URL(`https://${options.host}`);
  }

  repository(name: string, access: RepositoryAccess = 'pull'): RegistryRepository {
    return new RegistryRepository(this, name, [`repository:${name}:${access === 'push' ? 'pull,push' : 'pull'}`]);
  }

  url(path: string): URL {
    return new URL(path, this.baseUrl);
  }

  /**
   * Sends a request with a bearer token for `scopes` (each token minted once, however many requests
   * need it). A 401 means the token expired or was revoked: it is minted again once and the request
   * repeated (with a fresh body), as the ACR docs ask; a second 401 is a permission problem.
   * `retry: false` leaves recovering from failures to the caller (a resumable upload).
   */
  request(request: HttpRequest, scopes: readonly string[], doing: string): Promise<HttpResponse> {
    return this.authorized(request, scopes, doing, (authorized) => this.options.http.send(authorized));
  }

  /** A GET whose 2xx answer streams (see HttpTransport.stream), with the same token handling as request(). */
  requestStream(request: Omit<HttpRequest, 'method' | 'body'>, scopes: readonly string[], doing: string): Promise<StreamedResponse> {
    return this.authorized({ ...request, method: 'GET' }, scopes, doing, (authorized) => this.options.http.stream(authorized));
  }

  private async authorized<T extends HttpResponse>(request: HttpRequest, scopes: readonly string[], doing: string, send: (request: HttpRequest) => Promise<T>): Promise<T> {
    let challenge = await this.challenge();
    for (let attempt = 1; ; attempt++) {
      const headers: HttpHeaders = { ...request.headers };
      if (challenge) headers.authorization = `Bearer ${await this.options.tokens.accessToken(challenge, scopes)}`;
      const response = await send({ ...request, headers, endpoint: 'the registry' });
      if (response.status !== 401) return response;
      const fresh = parseBearerChallenge(response.headers['www-authenticate']);
      if (attempt >= 2 || !fresh) {
        const reason = fresh?.error === 'insufficient_scope' ? ' (insufficient_scope)' : '';
        const actions = new Set(scopes.flatMap((scope) => scope.slice(scope.lastIndexOf(':') + 1).split(',')));
        const [verb, role] = actions.has('delete') ? ['delete', 'AcrDelete'] : actions.has('push') ? ['push', 'AcrPush'] : ['pull', 'AcrPull'];
        throw new AuthenticationError(
          `The registry ${this.host} refused ${doing}${reason}: the identity may not ${verb} there. Give it the ${role} role on the registry (or a token with ${verb} access to the repository).`,
        );
      }
      this.options.tokens.invalidate(fresh);
      challenge = fresh;
    }
  }

  /**
   * Asks `/v2/` once for the registry's challenge, so the first real request already carries a
   * token; undefined when the registry lets anyone in.
   */
  challenge(): Promise<BearerChallenge | undefined> {
    this.knownChallenge ??= (async () => {
      const response = await this.options.http.send({ method: 'GET', url: this.url('/v2/'), endpoint: 'the registry' });
      if (response.status === 200) return undefined;
      const challenge = parseBearerChallenge(response.headers['www-authenticate']);
      if (response.status === 401 && challenge) return challenge;
      if (response.status === 404) throw new UserError(`${this.host} does not serve the registry API (GET /v2/ answered 404): check the registry login server.`);
      throw new UserError(`${this.host} answered GET /v2/ with HTTP ${response.status} and no Bearer challenge; it is not a registry this task can log in to.`);
    })();
    this.knownChallenge.catch(() => {
      this.knownChallenge = undefined;
    });
    return this.knownChallenge;
  }

  /** One error line for an answer that is not the one a step expects. */
  async failure(response: HttpResponse, doing: string): Promise<UserError> {
    const detail = errorDetail(await response.text());
    if (response.status === 403) {
      return new AuthenticationError(`The registry ${this.host} denied ${doing} (HTTP 403${detail ? ` ${detail}` : ''}): give the identity the AcrPush role, or check the registry's network rules.`);
    }
    if (detail.startsWith('DIGEST_INVALID')) {
      return new ContentError(`The content does not match its digest while ${doing} (${detail}): the image on disk is corrupt; build or save it again.`);
    }
    if (/^BLOB_UPLOAD_(UNKNOWN|INVALID)/.test(detail)) {
      return new UploadLostError(`The registry ${this.host} lost the upload while ${doing} (HTTP ${response.status} ${detail}).`, response.status);
    }
    return new HttpError(`The registry ${this.host} failed ${doing} (HTTP ${response.status}${detail ? ` ${detail}` : ''}).`, response.status);
  }
}

/** The registry no longer knows an upload (expired, or broken by an earlier request): a new one can start. */
class UploadLostError extends HttpError {}

/** One repository of the registry, under the token scopes it was opened with. */
export class RegistryRepository {
  constructor(
    private readonly client: RegistryClient,
    readonly name: string,
    private readonly scopes: readonly string[],
  ) {}

  /** HEAD the blob. ACR answers 307 (to its data endpoint) for blobs it has; that counts as present. */
  async blobExists(digest: string): Promise<boolean> {
    const doing = `checking blob ${digest} in ${this.name}`;
    const response = await this.request({ method: 'HEAD', url: this.url(`blobs/${digest}`), followRedirects: false }, doing);
    if (response.status === 200 || response.status === 307) return true;
    // Only a 404 means "absent"; anything else is an answer we must not guess about.
    if (response.status === 404) return false;
    throw await this.client.failure(response, doing);
  }

  /**
   * Uploads a blob whose digest is known, streaming byte ranges from disk, the last range on the
   * closing PUT. The registry checks the bytes against the digest on commit (DIGEST_INVALID
   * otherwise), so they are not hashed here.
   */
  async uploadBlob(blob: BlobContent, onProgress: (deltaBytes: number) => void): Promise<void> {
    const body: UploadBody = {
      finished: () => ({ digest: blob.digest, size: blob.size }),
      piece: (offset, max) => {
        const end = Math.min(blob.size, offset + max);
        return Promise.resolve({ length: end - offset, last: end === blob.size, open: () => blob.open(offset, end) });
      },
      close: () => undefined,
    };
    await this.upload(blob.digest, () => body, onProgress);
  }

  /**
   * Uploads bytes whose digest is only known once they have all been produced (a layer being
   * compressed on the fly), hashing them on the way out. A restarted upload calls `open` anew.
   */
  uploadStream(open: () => Readable, onProgress: (deltaBytes: number) => void): Promise<{ digest: string; size: number }> {
    return this.upload('a compressed layer', () => new StreamBody(open()), onProgress);
  }

  /** GETs a manifest by tag or digest; undefined when the registry has none under that name. */
  async getManifest(reference: string): Promise<StoredManifest | undefined> {
    const doing = `reading manifest ${reference} of ${this.name}`;
    const response = await this.request(
      { method: 'GET', url: this.url(`manifests/${reference}`), headers: { accept: MANIFEST_TYPES.join(', ') }, maxResponseBytes: MAX_MANIFEST_BYTES },
      doing,
    );
    if (response.status === 404) return undefined;
    if (response.status !== 200) throw await this.client.failure(response, doing);
    const bytes = await response.bytes();
    return { mediaType: (response.headers['content-type'] ?? '').split(';')[0].trim(), bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
  }

  /**
   * The digest a tag (or digest) resolves to, from a HEAD (distribution-spec "Checking if content
   * exists"), or undefined when there is nothing under that name. Registries that leave out
   * Docker-Content-Digest are asked with a GET instead.
   */
  async manifestDigest(reference: string): Promise<string | undefined> {
    const doing = `checking manifest ${reference} of ${this.name}`;
    const response = await this.request({ method: 'HEAD', url: this.url(`manifests/${reference}`), headers: { accept: MANIFEST_TYPES.join(', ') } }, doing);
    if (response.status === 404) return undefined;
    if (response.status !== 200) throw await this.client.failure(response, doing);
    return response.headers['docker-content-digest'] ?? (await this.getManifest(reference))?.digest;
  }

  /** GETs a small blob (an image config) into memory, following ACR's redirect to its data endpoint. */
  async readBlob(digest: string, maxBytes: number): Promise<Buffer> {
    const doing = `reading blob ${digest} of ${this.name}`;
    const response = await this.request({ method: 'GET', url: this.url(`blobs/${digest}`), maxResponseBytes: maxBytes }, doing);
    if (response.status !== 200) throw await this.client.failure(response, doing);
    return response.bytes();
  }

  /**
   * The bytes [start, end) of a blob of `size` bytes, streamed (distribution-spec "Fetching blobs";
   * a Range header unless the whole blob is asked for; ACR's redirect to its data endpoint is
   * followed). A registry that ignores Range and sends the whole blob still yields just the range.
   */
  async openBlob(digest: string, start: number, end: number, size: number): Promise<Readable> {
    const doing = `reading blob ${digest} of ${this.name}`;
    const partial = start > 0 || end < size;
    const headers: HttpHeaders = partial ? { range: `bytes=${start}-${end - 1}` } : {};
    const response = await this.client.requestStream({ url: this.url(`blobs/${digest}`), headers }, this.scopes, doing);
    if (response.status === 206 && partial) return response.body;
    if (response.status === 200) return partial ? response.body.pipe(byteRange(start, end)) : response.body;
    response.body.resume();
    if (response.status === 404) throw new HttpError(`The registry ${this.client.host} has no blob ${digest} in ${this.name}, though a manifest there names it (BLOB_UNKNOWN).`, 404);
    throw await this.client.failure(response, doing);
  }

  /**
   * Downloads a blob into `path` (mode 0600), following ACR's redirect to its data endpoint, and
   * checks the bytes against the digest. A download cut short starts over, under the transport's
   * retry budget.
   */
  async downloadBlob(digest: string, path: string): Promise<void> {
    const doing = `reading blob ${digest} of ${this.name}`;
    const response = await this.request({ method: 'GET', url: this.url(`blobs/${digest}`), saveTo: () => createWriteStream(path, { mode: 0o600 }) }, doing);
    if (response.status !== 200) throw await this.client.failure(response, doing);
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) hash.update(chunk);
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== digest) throw new ContentError(`The registry ${this.client.host} served ${actual} for blob ${digest} of ${this.name}; the download does not match its digest.`);
  }

  /**
   * Cross-repository mount (distribution-spec "Mounting a blob from another repository"): one
   * request, with one token scoped for both repositories. True when the registry mounted it; a 202
   * means it opened an upload instead (the source lacks the blob, or the identity may not pull it
   * there), which is cancelled.
   */
  async mountBlob(digest: string, from: string): Promise<boolean> {
    const doing = `mounting blob ${digest} from ${from} into ${this.name}`;
    const url = this.url('blobs/uploads/');
    url.searchParams.set('mount', digest);
    url.searchParams.set('from', from);
    const response = await this.client.request({ method: 'POST', url, headers: { 'content-length': '0' } }, [...this.scopes, `repository:${from}:pull`], doing);
    if (response.status === 201) return true;
    if (response.status !== 202) throw await this.client.failure(response, doing);
    const location = response.headers.location;
    if (location) await this.request({ method: 'DELETE', url: new URL(location, this.client.url('/')) }, `cancelling an upload to ${this.name}`).catch(() => undefined);
    return false;
  }

  /**
   * Manifests whose `subject` is `digest` (distribution-spec 1.1 "Listing referrers"), all pages;
   * undefined when the registry has no referrers API (it answers 404, as distribution 2.8 does):
   * then referrers are found under the tag `sha256-<hex>` (the spec's referrers tag schema).
   */
  async referrers(digest: string): Promise<Descriptor[] | undefined> {
    const doing = `listing the referrers of ${digest} in ${this.name}`;
    const found: Descriptor[] = [];
    let url: URL | undefined = this.url(`referrers/${digest}`);
    while (url) {
      const response = await this.request({ method: 'GET', url, headers: { accept: OCI_INDEX }, maxResponseBytes: MAX_MANIFEST_BYTES }, doing);
      if (response.status === 404 && found.length === 0) return undefined;
      if (response.status !== 200) throw await this.client.failure(response, doing);
      const index = (await response.json<Partial<ImageIndex>>()) ?? {};
      found.push(...(Array.isArray(index.manifests) ? index.manifests : []));
      const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(response.headers.link ?? '')?.[1];
      url = next ? this.client.url(next) : undefined;
    }
    return found;
  }

  /**
   * PUTs a manifest under a tag or digest and checks the registry computed the digest we did.
   * `subjectIndexed`: the registry answered `OCI-Subject`, so it lists this manifest as a referrer of
   * its subject itself; otherwise a client keeps the referrers tag up to date.
   */
  async putManifest(reference: string, manifest: StoredManifest): Promise<{ subjectIndexed: boolean }> {
    const doing = `storing manifest ${reference} in ${this.name}`;
    const response = await this.request(
      {
        method: 'PUT',
        url: this.url(`manifests/${reference}`),
        headers: { 'content-type': manifest.mediaType, 'content-length': String(manifest.bytes.length) },
        body: manifest.bytes,
      },
      doing,
    );
    if (response.status !== 201 && response.status !== 200) throw await this.client.failure(response, doing);
    const stored = response.headers['docker-content-digest'];
    if (stored && stored !== manifest.digest) {
      throw new ContentError(`The registry stored manifest ${reference} of ${this.name} as ${stored}, not ${manifest.digest}: it rewrote the manifest.`);
    }
    return { subjectIndexed: response.headers['oci-subject'] !== undefined };
  }

  /**
   * Removes a tag, leaving the manifest (distribution-spec 1.1 "Deleting tags"). Needs the `delete`
   * action, which a push identity may lack (ACR: AcrDelete), and registries may refuse it (400 or
   * 405): the error says which.
   */
  async deleteTag(tag: string): Promise<void> {
    const doing = `removing tag ${tag} of ${this.name}`;
    const response = await this.client.request({ method: 'DELETE', url: this.url(`manifests/${tag}`) }, [`repository:${this.name}:delete`], doing);
    if (response.status !== 202 && response.status !== 200) throw await this.client.failure(response, doing);
  }

  private url(path: string): URL {
    return this.client.url(`/v2/${this.name}/${path}`);
  }

  private request(request: HttpRequest, doing: string): Promise<HttpResponse> {
    return this.client.request(request, this.scopes, doing);
  }

  /**
   * One blob upload, retried as one operation that resumes: after a failure the registry is asked
   * how many bytes of the upload it holds (distribution-spec "Resuming an upload": GET the upload
   * Location, `Range: 0-<last>`) and the upload goes on from there. The budget counts failures in a
   * row, so an upload that keeps moving through a flaky connection gets through. Only when the
   * registry has dropped the upload does the blob start again from its first byte.
   */
  private async upload(what: string, makeBody: () => UploadBody, onProgress: (deltaBytes: number) => void): Promise<{ digest: string; size: number }> {
    let body = makeBody();
    let upload: UploadSession | undefined;
    // Bytes of this blob counted as sent; set back to what the registry holds after a failure.
    let counted = 0;
    const countTo = (bytes: number) => {
      onProgress(bytes - counted);
      counted = bytes;
    };
    const progress: UploadProgress = {
      sent: (bytes) => countTo(counted + bytes),
      rewind: () => countTo(upload?.offset ?? 0),
      restart: () => {
        body.close();
        body = makeBody();
        countTo(0);
      },
    };
    try {
      const isRetryable = (error: unknown) => isTransient(error) || error instanceof UploadLostError;
      return await this.client.options.http.retrying(`the registry ${this.client.host} (uploading ${what} to ${this.name})`, async (attempt) => {
        try {
          if (upload && attempt.number > 1) {
            const resumed = await this.resume(upload, body);
            if (resumed === 'committed') {
              const finished = body.finished()!;
              countTo(finished.size);
              return finished;
            }
            upload = resumed;
          }
          if (!upload) {
            if (attempt.number > 1) progress.restart();
            upload = await this.start();
          }
          countTo(upload.offset);
          return await this.send(upload, body, attempt, progress);
        } catch (error) {
          progress.rewind();
          throw error;
        }
      }, isRetryable);
    } finally {
      body.close();
    }
  }

  private async start(): Promise<UploadSession> {
    const doing = `starting an upload to ${this.name}`;
    const response = await this.request({ method: 'POST', url: this.url('blobs/uploads/'), headers: { 'content-length': '0' }, retry: false }, doing);
    if (response.status !== 202) throw await this.client.failure(response, doing);
    return { location: this.location(response), offset: 0 };
  }

  /** Sends from the upload's offset to the end and commits; `upload` moves forward as the registry confirms each piece. */
  private async send(upload: UploadSession, body: UploadBody, attempt: RetryAttempt, progress: UploadProgress): Promise<{ digest: string; size: number }> {
    for (;;) {
      let piece = await body.piece(upload.offset, this.client.chunkSize);
      if (piece === 'gone') {
        // The registry holds less than the bytes still at hand: only a new upload can go on.
        this.client.options.logger.warn(`The registry ${this.client.host} holds fewer bytes of the upload to ${this.name} than can be sent again; starting it again from the first byte`);
        progress.restart();
        Object.assign(upload, await this.start());
        piece = await body.piece(upload.offset, this.client.chunkSize);
        if (piece === 'gone') throw new Error('a new upload body cannot start at offset 0');
      }
      const onBytes = progress.sent;
      // Bytes count as they leave, so a long request shows progress.
      const counted = () => {
        const opened = piece.open();
        if (Buffer.isBuffer(opened)) {
          onBytes(opened.length);
          return Readable.from([opened]);
        }
        return opened.pipe(tap((chunk) => onBytes(chunk.length)));
      };
      const digest = piece.last ? body.finished()?.digest : undefined;
      const committing = digest !== undefined;
      const url = new URL(upload.location);
      if (committing) url.searchParams.set('digest', digest);
      const headers: HttpHeaders = { 'content-length': String(piece.length) };
      if (piece.length > 0) headers['content-type'] = 'application/octet-stream';
      if (!committing) headers['content-range'] = `${upload.offset}-${upload.offset + piece.length - 1}`;
      const doing = committing ? `committing ${digest} to ${this.name}` : `uploading to ${this.name}`;
      const response = await this.request({ method: committing ? 'PUT' : 'PATCH', url, headers, body: piece.length > 0 ? counted : undefined, retry: false }, doing);
      if (response.status === 413 && piece.length > MIN_CHUNK_SIZE && this.client.chunkSize > MIN_CHUNK_SIZE) {
        const half = Math.min(this.client.chunkSize, piece.length) / 2;
        this.client.chunkSize = Math.max(MIN_CHUNK_SIZE, Math.floor(half / MiB) * MiB);
        this.client.options.logger.warn(
          `${this.client.host} refused a request body as too large (HTTP 413); sending ${this.client.chunkSize / MiB} MiB at a time from now on`,
        );
        progress.rewind();
        continue;
      }
      if (committing) {
        if (response.status !== 201) throw await this.client.failure(response, doing);
        return { digest, size: upload.offset + piece.length };
      }
      if (response.status !== 202) throw await this.client.failure(response, doing);
      upload.offset += piece.length;
      upload.location = this.location(response);
      attempt.progressed();
    }
  }

  /**
   * Asks the registry where an interrupted upload stands. Undefined when it dropped the upload (it
   * answers BLOB_UPLOAD_UNKNOWN or BLOB_UPLOAD_INVALID, as distribution does after a request that
   * broke off with part of its body written); 'committed' when the blob is there after all.
   */
  private async resume(upload: UploadSession, body: UploadBody): Promise<UploadSession | 'committed' | undefined> {
    const doing = `asking where the upload to ${this.name} stands`;
    const response = await this.request({ method: 'GET', url: upload.location, retry: false }, doing);
    const range = /(\d+)-(\d+)/.exec(response.headers.range ?? '');
    if (response.status === 204 || response.status === 202 || response.status === 200) {
      if (range) {
        const last = Number(range[2]);
        // `0-0` is what distribution says for an empty upload as well as for one byte.
        const offset = last === 0 && upload.offset === 0 ? 0 : last + 1;
        const location = response.headers.location ? this.location(response) : upload.location;
        if (offset !== upload.offset) this.client.options.logger.debug(`The registry holds ${offset} bytes of the upload to ${this.name}; going on from there`);
        return { location, offset };
      }
    } else if (response.status >= 500 || response.status === 401 || response.status === 403) {
      throw await this.client.failure(response, doing);
    }
    const digest = body.finished()?.digest;
    if (digest && (await this.blobExists(digest))) return 'committed';
    const detail = errorDetail(await response.text());
    this.client.options.logger.warn(
      `The registry ${this.client.host} dropped the interrupted upload to ${this.name} (HTTP ${response.status}${detail ? ` ${detail}` : ''}); starting it again from the first byte`,
    );
    return undefined;
  }

  private location(response: HttpResponse): URL {
    const location = response.headers.location;
    if (!location) throw new HttpError(`The registry ${this.client.host} answered an upload request without a Location header (HTTP ${response.status}).`, response.status);
    // Location may be relative; its query string (upload state on some registries) is kept.
    return this.client.url(location);
  }
}

/** Passes on bytes [start, end) of what flows through, for a registry that answered a Range request with the whole blob. */
function byteRange(start: number, end: number): Transform {
  let position = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      const from = Math.max(0, start - position);
      const to = Math.min(chunk.length, end - position);
      position += chunk.length;
      if (to > from) this.push(chunk.subarray(from, to));
      if (position >= end) this.push(null);
      done();
    },
  });
}

/** Where an upload stands: the URL for its next request, and how many bytes the registry holds. */
interface UploadSession {
  location: URL;
  offset: number;
}

/** One request's worth of an upload's bytes. */
interface Piece {
  length: number;
  /** The last bytes of the blob: they ride on the committing PUT. */
  last: boolean;
  open(): Readable | Buffer;
}

/** How an upload reports bytes: counted as they leave, set back to what the registry holds after a failure. */
interface UploadProgress {
  sent: (bytes: number) => void;
  rewind: () => void;
  /** Starts the body over (a new upload): a stream is opened anew. */
  restart: () => void;
}

/** What an upload sends, from whatever offset the registry says it holds. */
interface UploadBody {
  /** Digest and size, once known (for a stream, once every byte has been produced). */
  finished(): { digest: string; size: number } | undefined;
  /**
   * Up to `max` bytes from `offset`: a piece of length 0 and `last` at the end. 'gone' when those
   * bytes can no longer be produced, so the upload has to start over.
   */
  piece(offset: number, max: number): Promise<Piece | 'gone'>;
  close(): void;
}

/**
 * A stream cut into chunks of about STREAM_CHUNK_SIZE, hashed as they are produced. The chunk
 * being sent stays in memory until the registry confirms it, so an interrupted PATCH is sent again
 * from where the registry stands; the next chunk is produced while the current one is sent, so the
 * producer (a gzip stream) keeps working during each PATCH.
 */
class StreamBody implements UploadBody {
  private readonly hash = createHash('sha256');
  private readonly pieces: AsyncIterator<Buffer>;
  private current: { start: number; bytes: Buffer } = { start: 0, bytes: Buffer.alloc(0) };
  private upcoming: Promise<Buffer | undefined>;
  private done = false;
  private result?: { digest: string; size: number };

  constructor(private readonly source: Readable) {
    this.pieces = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    this.upcoming = this.collect();
  }

  finished(): { digest: string; size: number } | undefined {
    return this.result;
  }

  close(): void {
    this.source.destroy();
  }

  async piece(offset: number, _max: number): Promise<Piece | 'gone'> {
    const end = this.current.start + this.current.bytes.length;
    if (offset === end && !this.done) {
      const next = await this.upcoming;
      if (next) {
        this.current = { start: end, bytes: next };
        this.upcoming = this.collect();
      } else {
        this.done = true;
        this.result = { digest: `sha256:${this.hash.digest('hex')}`, size: end };
      }
    }
    const start = this.current.start;
    const stop = this.current.start + this.current.bytes.length;
    if (offset < start || offset > stop) return 'gone';
    if (offset === stop) return { length: 0, last: true, open: () => Buffer.alloc(0) };
    const bytes = this.current.bytes.subarray(offset - start);
    return { length: bytes.length, last: false, open: () => bytes };
  }

  private collect(): Promise<Buffer | undefined> {
    const next = (async () => {
      const chunk: Buffer[] = [];
      let length = 0;
      while (length < STREAM_CHUNK_SIZE) {
        const item = await this.pieces.next();
        if (item.done) break;
        chunk.push(item.value);
        length += item.value.length;
      }
      if (length === 0) {
        this.source.destroy();
        return undefined;
      }
      const bytes = Buffer.concat(chunk, length);
      this.hash.update(bytes);
      return bytes;
    })();
    // Until the uploader awaits it, a failed read must not count as an unhandled rejection.
    next.catch(() => undefined);
    return next;
  }
}
