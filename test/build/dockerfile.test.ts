// Table tests of the Dockerfile reader: word expansion as BuildKit's shell lexer does it, line
// parsing (directives, continuations, comments, heredocs, flags), instruction arguments, and the
// `.dockerignore` and `--chmod` rules.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyChmod, parseChmod } from '../../src/build/chmod.js';
import { expandWord, expandWords, type VariableLookup } from '../../src/build/dockerfile/lexer.js';
import { readDockerfile } from '../../src/build/dockerfile/instructions.js';
import { parseDockerfile } from '../../src/build/dockerfile/parser.js';
import { IgnoreMatcher, readIgnoreFile } from '../../src/build/dockerignore.js';
import { parseImageName } from '../../src/build/baseImage.js';
import { parsePlatform } from '../../src/build/imageConfig.js';

const values = new Map([
  ['NAME', 'world'],
  ['EMPTY', ''],
  ['PATHISH', '/usr/local/bin/tool.tar.gz'],
  ['SPACED', 'a b  c'],
]);
const variables: VariableLookup = { get: (name) => values.get(name) };

describe('word expansion', () => {
  const cases: [string, string][] = [
    ['hello $NAME', 'hello world'],
    ['${NAME}s', 'worlds'],
    ["'$NAME'", '$NAME'],
    ['"$NAME"', 'world'],
    ['\\$NAME', '$NAME'],
    ['"\\$NAME \\"q\\""', '$NAME "q"'],
    ['"a\\b"', 'a\\b'],
    ['$UNSET.', '.'],
    ['${UNSET:-fallback}', 'fallback'],
    ['${EMPTY:-fallback}', 'fallback'],
    ['${EMPTY-fallback}', ''],
    ['${NAME:+set}', 'set'],
    ['${EMPTY:+set}', ''],
    ['${EMPTY+set}', 'set'],
    ['${UNSET+set}', ''],
    ['${PATHISH#*/}', 'usr/local/bin/tool.tar.gz'],
    ['${PATHISH##*/}', 'tool.tar.gz'],
    ['${PATHISH%.*}', '/usr/local/bin/tool.tar'],
    ['${PATHISH%%.*}', '/usr/local/bin/tool'],
    ['${PATHISH/local/opt}', '/usr/opt/bin/tool.tar.gz'],
    ['${PATHISH//o/0}', '/usr/l0cal/bin/t00l.tar.gz'],
    ['${NAME:-$EMPTY}x', 'worldx'],
    ['${UNSET:-"quoted default"}', 'quoted default'],
    ['$', '$'],
    ['a$1b', 'ab'],
  ];
  for (const [word, expected] of cases) test(`${word} → ${expected}`, () => assert.equal(expandWord(word, variables), expected));

  test('words split on unquoted whitespace, including whitespace a variable brings', () => {
    assert.deepEqual(expandWords('one "two three" $SPACED', variables), ['one', 'two three', 'a', 'b', 'c']);
    assert.deepEqual(expandWords('"$SPACED"', variables), ['a b  c']);
  });

  test('the backtick escape of `# escape=`', () => {
    assert.equal(expandWord('C:`\\dir `$NAME', variables, { escape: '`' }), 'C:\\dir $NAME');
  });

  const errors: [string, RegExp][] = [
    ['${NAME', /missing '}'/],
    ['${:-x}', /bad substitution/],
    ['"open', /matching double-quote/],
    ["'open", /matching single-quote/],
    ['${UNSET?must be set}', /UNSET: must be set/],
    ['${EMPTY:?}', /EMPTY: is not allowed to be empty/],
    ['${NAME:%x}', /unsupported modifier/],
  ];
  for (const [word, message] of errors) test(`${word} fails: ${message}`, () => assert.throws(() => expandWord(word, variables), message));
});

describe('Dockerfile lines', () => {
  test('directives, comments, continuations and their line numbers', () => {
    const parsed = parseDockerfile(['# escape=`', '# syntax=docker/dockerfile:1', 'FROM scratch', '', 'RUN echo a `', '  # a comment inside', '', '    b', 'copy --chown=1:2 --link a b', ''].join('\n'));
    assert.equal(parsed.escape, '`');
    assert.deepEqual(
      parsed.instructions.map((instruction) => [instruction.keyword, instruction.flags, instruction.rest, instruction.line, instruction.endLine]),
      [
        ['from', [], 'scratch', 3, 3],
        ['run', [], 'echo a     b', 5, 8],
        ['copy', ['--chown=1:2', '--link'], 'a b', 9, 9],
      ],
    );
  });

  test('a directive after the first instruction is a plain comment', () => {
    assert.equal(parseDockerfile('FROM scratch\n# escape=`\nCOPY a \\\n  b\n').instructions[1].rest, 'a   b');
  });

  test('heredocs: content up to the marker, <<- strips tabs, quotes turn expansion off', () => {
    const [copy] = readDockerfile('FROM scratch\nCOPY <<EOF <<-"RAW" /dst/\nline $X\nEOF\n\ttabbed\n\tRAW\nCMD ["x"]\n').stages[0].instructions.map((instruction) => instruction);
    assert.equal(copy.kind, 'copy');
    if (copy.kind !== 'copy') return;
    assert.deepEqual(copy.inline, [
      { kind: 'heredoc', name: 'EOF', content: 'line $X\n', expand: true },
      { kind: 'heredoc', name: 'RAW', content: 'tabbed\n', expand: false },
    ]);
    assert.equal(copy.dest, '/dst/');
  });

  test('instruction arguments', () => {
    const dockerfile = readDockerfile(
      [
        'ARG A=1 B',
        'FROM --platform=$BUILDPLATFORM image:1 AS Builder',
        'ENV K1=v1 K2="v 2"',
        'ENV OLD value  with spaces',
        'LABEL a=b',
        'EXPOSE 90 80/udp',
        'CMD echo hi',
        'ENTRYPOINT ["/bin/app", "--flag"]',
        'HEALTHCHECK --interval=1m30s --retries=2 CMD curl -f http://localhost/',
        'VOLUME /a /b',
        'ONBUILD COPY . /src',
        '',
      ].join('\n'),
    );
    assert.deepEqual(dockerfile.metaArgs[0].args, [{ key: 'A', value: '1' }, { key: 'B' }]);
    const [stage] = dockerfile.stages;
    assert.equal(stage.name, 'builder');
    assert.equal(stage.from.platform, '$BUILDPLATFORM');
    const byKind = Object.fromEntries(stage.instructions.map((instruction) => [instruction.kind + (instruction.kind === 'env' ? instruction.line : ''), instruction]));
    assert.deepEqual((byKind.env3 as { pairs: unknown }).pairs, [
      { key: 'K1', value: 'v1', legacy: false },
      { key: 'K2', value: '"v 2"', legacy: false },
    ]);
    assert.deepEqual((byKind.env4 as { pairs: unknown }).pairs, [{ key: 'OLD', value: 'value  with spaces', legacy: true }]);
    assert.deepEqual((byKind.expose as { ports: string[] }).ports, ['80/udp', '90']);
    assert.deepEqual((byKind.cmd as { command: unknown }).command, { args: ['echo hi'], json: false });
    assert.deepEqual((byKind.entrypoint as { command: unknown }).command, { args: ['/bin/app', '--flag'], json: true });
    assert.deepEqual((byKind.healthcheck as { healthcheck: unknown }).healthcheck, {
      test: ['CMD-SHELL', 'curl -f http://localhost/'],
      intervalNs: 90e9,
      timeoutNs: undefined,
      startPeriodNs: undefined,
      startIntervalNs: undefined,
      retries: 2,
    });
    assert.deepEqual((byKind.volume as { volumes: string[] }).volumes, ['/a', '/b']);
    assert.equal((byKind.onbuild as { expression: string }).expression, 'COPY . /src');
  });

  const refused: [string, RegExp][] = [
    ['FROM a b', /FROM requires either one or three arguments/],
    ['FROM scratch\nCOPY onlyone', /COPY requires at least two arguments/],
    ['FROM scratch\nCOPY --from=x --bogus a b', /unknown flag: --bogus/],
    ['FROM scratch\nFROBNICATE x', /unknown instruction: FROBNICATE/],
    ['COPY a b\nFROM scratch', /comes before the first FROM/],
    ['FROM scratch\nSHELL /bin/sh', /JSON form/],
    ['FROM scratch\nCMD [1, 2]', /arrays must be comprised of strings only/],
    ['FROM scratch\nHEALTHCHECK --interval=1ns CMD x', /cannot be less than 1ms/],
    ['# nothing', /file with no instructions/],
    ['FROM scratch\nCOPY <<EOF /x\nno end', /unterminated heredoc/],
  ];
  for (const [text, message] of refused) test(`refuses ${JSON.stringify(text)}`, () => assert.throws(() => readDockerfile(text), message));
});

describe('.dockerignore', () => {
  test('reading: comments, blanks, cleaning, leading slash', () => {
    assert.deepEqual(readIgnoreFile('\uFEFF# c\n\n /a/b/../c/ \n!  ./d\n**/x\n'), ['a/c', '!d', '**/x']);
  });

  const matcher = new IgnoreMatcher(readIgnoreFile(['*.md', '**/secret*', 'logs', '!logs/keep.log', 'build/**', '!build/out', 'a?c', '[xy].txt'].join('\n')));
  const verdicts: [string, boolean][] = [
    ['README.md', true],
    ['docs/README.md', false],
    ['secrets', true],
    ['config/secret.yaml', true],
    ['logs', true],
    ['logs/app.log', true],
    ['logs/keep.log', false],
    ['build/cache/x', true],
    ['build/out', false],
    ['abc', true],
    ['ab/c', false],
    ['x.txt', true],
    ['z.txt', false],
    ['src/index.js', false],
  ];
  for (const [path, excluded] of verdicts) test(`${path} is ${excluded ? '' : 'not '}excluded`, () => assert.equal(matcher.match(path).excluded, excluded));

  test('an excluded folder is looked into only when an exception names something inside', () => {
    assert.equal(matcher.mayIncludeInside('logs'), true);
    assert.equal(matcher.mayIncludeInside('secrets'), false);
    assert.equal(new IgnoreMatcher(['dist']).mayIncludeInside('dist'), false);
  });
});

describe('--chmod', () => {
  const cases: [string, number, boolean, number][] = [
    ['0640', 0o755, false, 0o640],
    ['755', 0o600, false, 0o755],
    ['u+x', 0o644, false, 0o744],
    ['go-w', 0o666, false, 0o644],
    ['a=rX', 0o600, true, 0o555],
    ['a=rX', 0o600, false, 0o444],
    ['u=rw,g=u,o=', 0o777, false, 0o660],
    ['+x', 0o644, false, 0o755],
    ['u+s', 0o755, false, 0o4755],
  ];
  for (const [spec, mode, isDirectory, expected] of cases) {
    test(`${spec} on ${mode.toString(8)} → ${expected.toString(8)}`, () => assert.equal(applyChmod(parseChmod(spec), mode, isDirectory), expected));
  }
  test('numbers that are not octal modes are refused', () => {
    assert.throws(() => parseChmod('0999'), /should be octal string and between 0 and 07777/);
    assert.throws(() => parseChmod('17777'), /between 0 and 07777/);
    assert.throws(() => parseChmod('u+q'), /invalid chmod parameter/);
  });
});

describe('image names and platforms', () => {
  const names: [string, ReturnType<typeof parseImageName>][] = [
    ['busybox', { registry: 'docker.io', repository: 'library/busybox', tag: 'latest', digest: undefined }],
    ['contoso.azurecr.io/team/app:1.2', { registry: 'contoso.azurecr.io', repository: 'team/app', tag: '1.2', digest: undefined }],
    ['localhost:5000/app', { registry: 'localhost:5000', repository: 'app', tag: 'latest', digest: undefined }],
    [`127.0.0.1:9/x@sha256:${'a'.repeat(64)}`, { registry: '127.0.0.1:9', repository: 'x', tag: undefined, digest: `sha256:${'a'.repeat(64)}` }],
    ['Upper/Case', undefined],
  ];
  for (const [text, expected] of names) test(`${text}`, () => assert.deepEqual(parseImageName(text), expected));

  test('platforms normalise as containerd does', () => {
    assert.deepEqual(parsePlatform('linux/aarch64'), { os: 'linux', architecture: 'arm64' });
    assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64' });
    assert.deepEqual(parsePlatform('linux/arm'), { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.throws(() => parsePlatform('amd64'), /Input 'platforms': 'amd64' is not a platform/);
  });
});
