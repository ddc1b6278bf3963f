import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectionError, HttpError, RetriesExhaustedError, TimeoutError, errorMessage } from '../errors.js';
import { formatDuration, type Logger } from '../log.js';

/** How hard one request is tried. The transport holds one policy for every request it sends. */
export interface RetryPolicy {
  /** Tries of one request, the first included. Default 5. */
  attempts?: number;
  /**
   * Backoff before the second try; it doubles with each failure up to maxDelayMs. Every wait is
   * drawn at random between half and all of it, so clients that failed together do not all come
   * back together. Default 500 ms.
   */
  baseDelayMs?: number;
  /** Upper bound of one backoff (a server's Retry-After may ask for more, up to 60 s). Default 8 s. */
  maxDelayMs?: number;
}

export interface RetryOptions extends RetryPolicy {
  /** What is tried, named in every warning and in the final error: `registry.example (GET /v2/)`. */
  what: string;
  /** Where each retry says why it waits. Default: nowhere. */
  logger?: Logger;
  /** Whether this failure is worth another try. Default: isTransient. */
  isRetryable?: (error: unknown) => boolean;
}

export interface RetryAttempt {
  /** 1 for the first try. */
  readonly number: number;
  /**
   * Says the operation moved forward (a resumed upload got more bytes in): the failures before it
   * no longer count against the budget, which bounds failures in a row, not in all.
   */
  progressed(): void;
}

const DEFAULT_ATTEMPTS = 5;
/**
 * A request that stalled is tried once more and no more: each stall costs a whole timeout, and an
 * endpoint that accepted a connection and then said nothing twice is not going to answer.
 */
const STALLED_ATTEMPTS = 2;
const MAX_RETRY_AFTER_MS = 60_000;

/**
 * Transient means another identical request may succeed: the network dropped or stalled, the server
 * was overloaded (429, with its Retry-After) or failed (5xx), or it timed out (408). Every other 4xx
 * is an answer about the request itself, and repeating it only burns the registry's write quota.
 * An exhausted budget is final, so an outer operation never retries what an inner one gave up on.
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof ConnectionError) return error.transient;
  if (error instanceof HttpError) return error.status === 408 || error.status === 429 || error.status >= 500;
  return false;
}

/**
 * The one retry helper: runs `operation` until it succeeds, fails with an error that is not worth
 * another try, or runs out of budget, and then throws one RetriesExhaustedError that names what was
 * tried, the true number of attempts and the last failure.
 */
export async function retry<T>(operation: (attempt: RetryAttempt) => Promise<T>, options: RetryOptions): Promise<T> {
  const budget = options.attempts ?? DEFAULT_ATTEMPTS;
  const baseDelayMs = options.baseDelayMs ?? 500;
  const maxDelayMs = options.maxDelayMs ?? 8_000;
  const isRetryable = options.isRetryable ?? isTransient;
  const started = Date.now();
  let failures = 0;
  let stalls = 0;
  for (let number = 1; ; number++) {
    const attempt: RetryAttempt = {
      number,
      progressed: () => {
        failures = 0;
        stalls = 0;
      },
    };
    try {
      return await operation(attempt);
    } catch (error) {
      if (!isRetryable(error)) throw error;
      failures++;
      if (error instanceof TimeoutError) stalls++;
      const triesLeft = error instanceof TimeoutError ? Math.min(budget - failures, STALLED_ATTEMPTS - stalls) : budget - failures;
      if (triesLeft <= 0) throw exhausted(error, number, failures, started, options.what);
      const backoff = Math.min(maxDelayMs, baseDelayMs * 2 ** (failures - 1));
      const jittered = backoff / 2 + Math.random() * (backoff / 2);
      const serverAsked = error instanceof HttpError ? error.retryAfterMs : undefined;
      const delayMs = Math.round(serverAsked !== undefined ? Math.min(MAX_RETRY_AFTER_MS, Math.max(serverAsked, jittered)) : jittered);
      options.logger?.warn(`${options.what}: ${errorMessage(error)}; retrying in ${formatDuration(delayMs)} (attempt ${number + 1} of at most ${number + triesLeft})`);
      await sleep(delayMs);
    }
  }
}

function exhausted(error: unknown, attempts: number, inARow: number, started: number, what: string): RetriesExhaustedError {
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const count = inARow < attempts ? `${attempts} attempts (the last ${inARow} in a row without progress)` : `${attempts} attempt${attempts === 1 ? '' : 's'}`;
  const advice = error instanceof HttpError ? ' It kept failing on the server side; run the task again later.' : '';
  return new RetriesExhaustedError(`Gave up on ${what} after ${count} in ${seconds} s: ${errorMessage(error).replace(/\.?$/, '.')}${advice}`, attempts, { cause: error });
}

/** Parses Retry-After in either of its RFC 9110 forms (seconds, or an HTTP date). */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
