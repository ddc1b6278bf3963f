// The one runner of the CLIs the tasks drive: lines relayed as they come (the last one too, without
// its newline), a stop that escalates to SIGKILL when the tool ignores its clean-stop signal, a
// bound that kills a tool that never ends, and one clear line when the tool is not installed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from '../../src/cli.js';

const quiet = { onStderrLine: () => undefined, stopSignal: 'SIGTERM' as const, stopGraceMs: 200, notFound: 'sh is missing' };

test('stderr lines relayed one by one, empty ones dropped, the unterminated last one kept; stdout collected', async () => {
  const lines: string[] = [];
  const exit = await runCli('sh', ['-c', 'printf "one\\n\\ntwo\\nthree" >&2; printf "out"; exit 3'], { ...quiet, onStderrLine: (line) => lines.push(line) });
  assert.deepEqual(lines, ['one', 'two', 'three']);
  assert.deepEqual(exit, { code: 3, stdout: 'out', stderr: 'one\n\ntwo\nthree', timedOut: false });
});

test('stdout lines go to their own callback when given', async () => {
  const lines: string[] = [];
  const exit = await runCli('sh', ['-c', 'echo a; echo b'], { ...quiet, onStdoutLine: (line) => lines.push(line) });
  assert.deepEqual(lines, ['a', 'b']);
  assert.equal(exit.stdout, '');
});

test('cancelled: the clean-stop signal first, SIGKILL after the grace period when the tool ignores it', async () => {
  const cancel = new AbortController();
  const started = Date.now();
  const running = runCli('sh', ['-c', 'trap "" TERM; echo ready >&2; while :; do sleep 0.05; done'], {
    ...quiet,
    signal: cancel.signal,
    onStderrLine: () => cancel.abort(),
  });
  const exit = await running;
  assert.equal(exit.code, null, 'ended by a signal');
  assert.ok(Date.now() - started >= 200, 'the grace period was given');
  assert.ok(Date.now() - started < 5_000);
  await assert.rejects(runCli('sh', ['-c', 'true'], { ...quiet, signal: cancel.signal }), { name: 'AbortError' });
});

test('a tool that runs past its bound is killed and says so', async () => {
  const exit = await runCli('sleep', ['30'], { ...quiet, killAfterMs: 100 });
  assert.equal(exit.timedOut, true);
  assert.equal(exit.code, null);
});

test('a tool that is not installed is the caller\'s one line', async () => {
  await assert.rejects(runCli('no-such-tool-here', [], quiet), { message: 'sh is missing' });
});
