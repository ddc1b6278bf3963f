// The one retry helper: what is tried again, how long it waits, when it stops, and what it says then.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConnectionError, HttpError, RetriesExhaustedError, TimeoutError, UserError } from '../../src/errors.js';
import { isTransient, parseRetryAfter, retry } from '../../src/http/retry.js';
import type { Logger } from '../../src/log.js';

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, info() {}, debug() {}, warn: (line) => warnings.push(line) };
}

/** Fails with `errors` in turn, then succeeds; counts its calls. */
function failing(...errors: Error[]) {
  const operation = Object.assign(
    () => {
      const error = errors[operation.calls++];
      return error === undefined ? Promise.resolve('done') : Promise.reject(error);
    },
    { calls: 0 },
  );
  return operation;
}

test('transient failures are the network and 408, 429, 5xx; other answers and exhausted budgets are final', () => {
  const table: [unknown, boolean][] = [
    [new ConnectionError('reset', true), true],
    [new TimeoutError('stalled'), true],
    [new ConnectionError('untrusted certificate', false), false],
    [new HttpError('timeout', 408), true],
    [new HttpError('throttled', 429), true],
    [new HttpError('unavailable', 503), true],
    [new HttpError('bad request', 400), false],
    [new HttpError('not found', 404), false],
    [new RetriesExhaustedError('gave up', 5), false],
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

test('waits a jittered backoff, or longer when the server asks, and says so in one line per retry', async () => {
  const logger = recordingLogger();
  const operation = failing(new HttpError('throttled', 429, 300), new ConnectionError('reset', true), new ConnectionError('reset', true));
  const started = Date.now();
  assert.equal(await retry(operation, { what: 'registry.test (GET /v2/)', baseDelayMs: 40, logger }), 'done');
  const delays = logger.warnings.map((line) => Number(/retrying in ([\d.]+) s/.exec(line)![1]) * 1000);
  assert.equal(operation.calls, 4);
  assert.equal(delays[0], 300);
  // The second and third failures back off half to all of 80 ms, then of 160 ms (logged rounded to 0.1 s).
  assert.ok(delays[1] <= 100 && delays[2] >= 100 && delays[2] <= 200, String(delays));
  assert.ok(Date.now() - started >= 300 + 40 + 80);
  assert.match(logger.warnings[0], /^registry\.test \(GET \/v2\/\): throttled; retrying in 0\.3 s \(attempt 2 of at most 5\)$/);
});

test('stops at once on a final failure, and after the budget with one error naming what, how often and the last failure', async () => {
  const forbidden = failing(new HttpError('forbidden', 403));
  await assert.rejects(retry(forbidden, { what: 'x' }), /^HttpError: forbidden$/);
  assert.equal(forbidden.calls, 1);

  const down = failing(...Array.from({ length: 9 }, () => new HttpError('HTTP 503', 503)));
  await assert.rejects(retry(down, { what: 'the ACR token server 10.0.0.5 (POST /oauth2/exchange)', attempts: 3, baseDelayMs: 1 }), (error: Error) => {
    assert.ok(error instanceof RetriesExhaustedError);
    assert.equal(error.attempts, 3);
    assert.match(error.message, /^Gave up on the ACR token server 10\.0\.0\.5 \(POST \/oauth2\/exchange\) after 3 attempts in [\d.]+ s: HTTP 503\. It kept failing/);
    return true;
  });
  assert.equal(down.calls, 3);
});

test('an operation inside another one does not multiply the budget: its exhausted failure is final', async () => {
  let inner = 0;
  const outer = retry(
    () =>
      retry(
        () => {
          inner++;
          return Promise.reject(new ConnectionError('reset', true));
        },
        { what: 'inner', baseDelayMs: 1 },
      ),
    { what: 'outer', baseDelayMs: 1 },
  );
  await assert.rejects(outer, /^RetriesExhaustedError: Gave up on inner after 5 attempts/);
  assert.equal(inner, 5);
});

test('a stall is retried once: a second one ends the operation', async () => {
  const logger = recordingLogger();
  const stall = () => new TimeoutError('registry.test went silent for 2 s (idle timeout)');
  const stalling = failing(stall(), stall(), stall());
  await assert.rejects(retry(stalling, { what: 'registry.test (GET /v2/)', baseDelayMs: 1, logger }), /after 2 attempts .*went silent for 2 s \(idle timeout\)/);
  assert.equal(stalling.calls, 2);
  assert.equal(logger.warnings.length, 1);
  assert.match(logger.warnings[0], /idle timeout\); retrying in [\d.]+ s \(attempt 2 of at most 2\)$/);
});

test('progress resets the budget: failures are counted in a row, attempts in all', async () => {
  let calls = 0;
  const result = await retry(
    (attempt) => {
      calls++;
      // Every try gets a little further before the connection drops, as a resumed upload does.
      attempt.progressed();
      return calls < 8 ? Promise.reject(new ConnectionError('reset', true)) : Promise.resolve(calls);
    },
    { what: 'upload', baseDelayMs: 1, attempts: 3 },
  );
  assert.equal(result, 8);
  let tries = 0;
  await assert.rejects(
    retry(
      (attempt) => {
        if (++tries <= 4) attempt.progressed();
        return Promise.reject(new ConnectionError('reset', true));
      },
      { what: 'upload', baseDelayMs: 1, attempts: 3 },
    ),
    /after 6 attempts \(the last 3 in a row without progress\)/,
  );
});
