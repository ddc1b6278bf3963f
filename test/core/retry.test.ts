// The one retry helper: what is tried again, how long it waits, and when it stops.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConnectionError, HttpError, UserError } from '../../src/errors.js';
import { isTransient, parseRetryAfter, retry } from '../../src/http/retry.js';

test('transient failures are the network and 408, 429, 5xx; other answers are final', () => {
  const table: [unknown, boolean][] = [
    [new ConnectionError('reset', true), true],
    [new ConnectionError('untrusted certificate', false), false],
    [new HttpError('timeout', 408), true],
    [new HttpError('throttled', 429), true],
    [new HttpError('unavailable', 503), true],
    [new HttpError('bad request', 400), false],
    [new HttpError('not found', 404), false],
    [new UserError('bad input'), false],
    [new Error('bug'), false],
  ];
  for (const [error, expected] of table) assert.equal(isTransient(error), expected, String(error));
});

test('Retry-After in seconds or as an HTTP date', () => {
  const now = Date.parse('2026-11-27T10:00:00Z');
  assert.equal(parseRetryAfter('3', now), 3000);
  assert.equal(parseRetryAfter('Fri, 27 Nov 2026 10:00:05 GMT', now), 5000);
  assert.equal(parseRetryAfter('Fri, 27 Nov 2026 09:00:00 GMT', now), 0);
  assert.equal(parseRetryAfter(undefined, now), undefined);
  assert.equal(parseRetryAfter('soon', now), undefined);
});

test('retries a transient failure with backoff, honouring a longer Retry-After', async () => {
  const delays: number[] = [];
  let calls = 0;
  const result = await retry(
    () => {
      calls++;
      if (calls === 1) return Promise.reject(new HttpError('throttled', 429, 40));
      if (calls === 2) return Promise.reject(new ConnectionError('reset', true));
      return Promise.resolve('done');
    },
    { baseDelayMs: 10, onRetry: (_error, _attempt, delayMs) => delays.push(delayMs) },
  );
  assert.equal(result, 'done');
  assert.deepEqual(delays, [40, 20]);
});

test('stops at once on a final failure and after the last attempt on transient ones', async () => {
  let calls = 0;
  await assert.rejects(
    retry(() => {
      calls++;
      return Promise.reject(new HttpError('forbidden', 403));
    }),
    /forbidden/,
  );
  assert.equal(calls, 1);
  calls = 0;
  await assert.rejects(
    retry(
      () => {
        calls++;
        return Promise.reject(new HttpError('unavailable', 503));
      },
      { attempts: 3, baseDelayMs: 1 },
    ),
    /unavailable/,
  );
  assert.equal(calls, 3);
});
