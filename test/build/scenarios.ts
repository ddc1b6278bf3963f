// Dockerfiles and contexts that exercise every instruction the assemble builder handles, written
// where BuildKit and this builder could differ (see PROTOCOLS.md, "Building images without a
// runtime"). Each scenario writes its context and returns how to build it.
import { chmod, link, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';

export interface Scenario {
  name: string;
  /** Writes the context (Dockerfile included) into `dir`. */
  write(dir: string): Promise<void>;
  buildArgs?: Record<string, string>;
  target?: string;
}

async function files(dir: string, entries: Record<string, string | { content: string; mode: number }>): Promise<void> {
  for (const [path, value] of Object.entries(entries)) {
    const full = join(dir, path);
    await mkdir(join(full, '..'), { recursive: true });
    const content = typeof value === 'string' ? value : value.content;
    await writeFile(full, content);
    if (typeof value !== 'string') await chmod(full, value.mode);
  }
}

/** Every scenario's Dockerfile takes the base image as the build argument BASE. */
export function scenarios(base: string): Scenario[] {
  return [
    {
      name: 'config instructions, ARG and ENV expansion, COPY forms and owners',
      buildArgs: { BASE: base, GREETING: 'hello from build-arg' },
      async write(dir) {
        await files(dir, {
          'app/server.sh': { content: '#!/bin/sh\necho "$GREETING"\n', mode: 0o755 },
          'app/lib/util.txt': 'util\n',
          'app/lib/deep/nested.txt': 'nested\n',
          'notes/a.txt': 'a\n',
          'notes/b.txt': 'b\n',
          'notes/c.md': 'c\n',
          'tool': { content: '#!/bin/sh\necho tool\n', mode: 0o750 },
          'secret.conf': { content: 'mode 600\n', mode: 0o600 },
          'data/config.json': '{}\n',
        });
        await chmod(join(dir, 'app/lib'), 0o700);
        await symlink('server.sh', join(dir, 'app/start'));
        await symlink('../notes/a.txt', join(dir, 'app/lib/a-link'));
        await symlink('tool', join(dir, 'tool-link'));
        await link(join(dir, 'notes/a.txt'), join(dir, 'notes/a-hard.txt'));
        await writeFile(
          join(dir, 'Dockerfile'),
          [
            'ARG BASE',
            'ARG TAG_SUFFIX=ignored',
            'FROM ${BASE}',
            'ARG GREETING=default greeting',
            'ARG EMPTY',
            'ENV APP_HOME=/app \\',
            '    GREETING="${GREETING}" \\',
            '    UNSET_DEFAULT=${NOT_SET:-fallback} SET_ALT=${APP_HOME:+alt}',
            'ENV LEGACY value with   spaces',
            'ENV PATH=$APP_HOME/bin:$PATH',
            'LABEL org.example.name="demo app" org.example.home=$APP_HOME',
            'LABEL "quoted key"=value',
            'WORKDIR $APP_HOME',
            'COPY app/ ./',
            'COPY notes/*.txt /notes/',
            'COPY tool /usr/local/bin',
            'COPY tool-link /usr/local/bin/tool-from-link',
            'COPY --chown=1000 data /srv/data-numeric/',
            'COPY --chown=app data /opt/data/by-name',
            'COPY --chown=app:staff --chmod=0640 secret.conf /etc/app/secret.conf',
            'COPY --chmod=u+x,go-w notes/c.md /usr/share/doc/',
            'COPY ["notes/b.txt", "/var/run/b.txt"]',
            'USER app',
            'WORKDIR /home/app/work',
            'WORKDIR sub',
            'USER 1000:50',
            'EXPOSE 8080 9000-9002/udp ${EMPTY}',
            'VOLUME ["/data"] ',
            'STOPSIGNAL SIGQUIT',
            'HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD ["/bin/true"]',
            'SHELL ["/bin/sh", "-ec"]',
            'CMD echo "$GREETING"',
            'ONBUILD COPY . /onbuild',
            'ENTRYPOINT ["/app/server.sh"]',
            '',
          ].join('\n'),
        );
      },
    },
    {
      name: 'FROM scratch defaults, COPY --from an image, heredocs',
      buildArgs: { BASE: base },
      async write(dir) {
        await files(dir, { 'hello.txt': 'hello\n' });
        await writeFile(
          join(dir, 'Dockerfile'),
          [
            'ARG BASE',
            'FROM scratch',
            'ARG BASE',
            `COPY --from=${base} /bin/busybox /bin/`,
            `COPY --from=${base} /etc/passwd /etc/group /etc/`,
            `COPY --from=${base} /home/app /home/app`,
            'COPY hello.txt .',
            'COPY <<EOF /etc/motd',
            'Welcome to ${BASE}',
            'EOF',
            "COPY <<-'END' /etc/raw.txt",
            '\tnot $expanded',
            '\tEND',
            'CMD ["/bin/busybox", "cat", "/hello.txt"]',
            '',
          ].join('\n'),
        );
      },
    },
    {
      name: 'multi-stage with a target, COPY --from a stage, stages after the target not built',
      buildArgs: { BASE: base, VERSION: '1.2.3' },
      target: 'runtime',
      async write(dir) {
        await files(dir, { 'src/main.txt': 'main\n', 'src/assets/logo.txt': 'logo\n' });
        await chmod(join(dir, 'src/assets'), 0o750);
        await writeFile(
          join(dir, 'Dockerfile'),
          [
            'ARG BASE',
            'ARG VERSION=0.0.0',
            'FROM ${BASE} AS build',
            'ARG VERSION',
            'ENV BUILD_VERSION=$VERSION',
            'COPY --chown=1000:1000 src /build/out/',
            'WORKDIR /build',
            '',
            'FROM build AS runtime',
            'ENV RUNTIME_OF=${BUILD_VERSION}-runtime',
            'COPY --from=build /build/out /srv/app',
            'COPY --from=0 /etc/platform /etc/copied-platform',
            'ENTRYPOINT ["/bin/cat"]',
            'CMD ["/srv/app/main.txt"]',
            '',
            'FROM runtime AS never-built',
            'RUN false',
            '',
          ].join('\n'),
        );
      },
    },
    {
      name: '.dockerignore with ** and ! exceptions',
      buildArgs: { BASE: base },
      async write(dir) {
        await files(dir, {
          'README.md': 'root readme\n',
          'docs/guide.md': 'guide\n',
          'secrets/token': 'nope\n',
          'config/secret.yaml': 'nope\n',
          'config/app.yaml': 'yes\n',
          'logs/app.log': 'nope\n',
          'logs/keep.log': 'kept\n',
          'build/cache/x.bin': 'nope\n',
          'build/output/app': 'kept\n',
          'src/index.js': 'code\n',
          'src/test/spec.js': 'test\n',
        });
        await chmod(join(dir, 'logs'), 0o711);
        await chmod(join(dir, 'build'), 0o700);
        await writeFile(join(dir, '.dockerignore'), ['# comments are skipped', '*.md', '**/secret*', 'logs', '!logs/keep.log', 'build/**', '!build/output/app', '/src/test', ''].join('\n'));
        await writeFile(join(dir, 'Dockerfile'), ['ARG BASE', 'FROM ${BASE}', 'COPY . /ctx/', 'COPY --exclude=*.js src /src-filtered/', ''].join('\n'));
      },
    },
    {
      name: 'ADD of a local archive and a plain file, COPY --link',
      buildArgs: { BASE: base },
      async write(dir) {
        const payload = join(dir, 'payload');
        await files(payload, { 'bin/run.sh': { content: '#!/bin/sh\necho run\n', mode: 0o755 }, 'share/readme.txt': 'archived\n' });
        execFileSync('tar', ['--numeric-owner', '--owner=123', '--group=456', '-czf', join(dir, 'bundle.tar.gz'), '-C', payload, '.']);
        execFileSync('tar', ['--numeric-owner', '-cf', join(dir, 'plain.tar'), '-C', payload, 'share']);
        await files(dir, { 'single.txt': 'single\n', 'linked/one.txt': 'one\n' });
        await writeFile(
          join(dir, 'Dockerfile'),
          ['ARG BASE', 'FROM ${BASE}', 'ENTRYPOINT ["/bin/ls"]', 'ADD bundle.tar.gz /opt/bundle/', 'ADD plain.tar /opt/plain', 'ADD --chown=1000:1000 single.txt /opt/single.txt', 'COPY --link linked/ /opt/linked/', 'COPY --link --chown=1000 single.txt /home/app/linked.txt', ''].join('\n'),
        );
      },
    },
  ];
}
