import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectionError, HttpError } from '../errors.js';

export interface RetryOptions {
  /** Total tries including the first. Default 5. */
  attempts?: number;
  /** Delay before the second try; doubles each time up to maxDelayMs. Default 500 ms. */
  baseDelayMs?: number;
  /** Upper bound of one backoff delay (a server's Retry-After may ask for more, up to 60 s). Default 8 s. */
  maxDelayMs?: number;
  /** Whether this failure is worth another try. Default: isTransient. */
  isRetryable?: (error: unknown) => boolean;
  /** Called before each wait, so long operations can say why they pause. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}

/**
 * Transient means another identical request may succeed: the network dropped, the server was
 * overloaded (429, honouring Retry-After) or failed (5xx), or it timed out (408). Every other 4xx
 * is an answer about the request itself and repeating it only burns the registry's write quota.
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof ConnectionError) return error.transient;
  if (error instanceof HttpError) return error.status === 408 || error.status === 429 || error.status >= 500;
  return false;
}

const MAX_RETRY_AFTER_MS = 60_000;

/** Runs `operation` until it succeeds, fails with a non-retryable error, or runs out of attempts. */
export async function retry<T>(operation: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 5;
  const baseDelayMs = options.baseDelayMs ?? 500;
  const maxDelayMs = options.maxDelayMs ?? 8_000;
  const isRetryable = options.isRetryable ?? isTransient;
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      if (attempt >= attempts || !isRetryable(error)) throw error;
      const backoff = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
      const serverAsked = error instanceof HttpError ? error.retryAfterMs : undefined;
      const delayMs = serverAsked !== undefined ? Math.min(MAX_RETRY_AFTER_MS, Math.max(serverAsked, backoff)) : backoff;
      options.onRetry?.(error, attempt, delayMs);
      await sleep(delayMs);
    }
  }
}

/** Parses Retry-After in either of its RFC 9110 forms (seconds, or an HTTP date). */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
