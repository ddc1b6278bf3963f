import { HttpError } from '../errors.js';
import { parseRetryAfter } from './retry.js';
import type { HttpResponse } from './transport.js';

/**
 * Throws a retryable HttpError for answers that say "not now" (408, 429, 5xx), carrying the
 * server's Retry-After; passes every other response through for the caller to interpret.
 */
export async function rejectTransient(response: HttpResponse, what: string): Promise<HttpResponse> {
  if (response.status === 408 || response.status === 429 || response.status >= 500) {
    await response.discard();
    throw new HttpError(`${what}: HTTP ${response.status}`, response.status, parseRetryAfter(response.headers['retry-after']));
  }
  return response;
}
