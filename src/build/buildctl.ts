// The buildctl CLI, from PATH (the agent image ships it, pinned and checksummed). Arguments are
// built as arrays from typed options and never carry a secret: build secrets reach buildctl by the
// names of environment variables (`--secret id=…,env=…`), registry logins through the docker
// config.json in DOCKER_CONFIG, and the daemon's mTLS key as a file. buildctl answers the daemon's
// credential requests from that config itself (moby/buildkit session/auth), so the daemon fetches
// with short-lived tokens and stores no login.
import { access } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { runCli } from '../cli.js';
import { UserError } from '../errors.js';
import type { Logger } from '../log.js';
import type { BuildDefinition } from './assemble.js';
import type { BuildkitProgress } from './buildkitProgress.js';
import type { BuildSecret } from './options.js';

/** Where and as whom buildctl reaches the daemon: `tcp://host:port` and the mTLS files. */
export interface BuildkitConnection {
  address: string;
  /** The CA that issued the daemon's certificate. */
  caFile: string;
  /** The client certificate and its key, issued by the CA the daemon trusts. */
  certFile: string;
  keyFile: string;
}

/**
 * The mTLS files in `folder`: `ca.pem`, `cert.pem`, `key.pem` (BuildKit's names), or `ca.crt`,
 * `tls.crt`, `tls.key` (a mounted kubernetes.io/tls Secret, as cert-manager writes one), as
 * `buildctl --tlsdir` accepts them.
 */
export async function certificateFiles(folder: string, input: string): Promise<Omit<BuildkitConnection, 'address'>> {
  const pick = async (...names: string[]) => {
    for (const name of names) {
      const path = join(folder, name);
      if (await access(path).then(() => true, () => false)) return path;
    }
    throw new UserError(
      `Input '${input}': ${folder} has no ${names.join(' or ')}; give the folder with the BuildKit client certificate (ca.pem, cert.pem, key.pem), which the agent chart's builder mounts into its agents.`,
    );
  };
  return { caFile: await pick('ca.pem', 'ca.crt'), certFile: await pick('cert.pem', 'tls.crt'), keyFile: await pick('key.pem', 'tls.key') };
}

/** The build as buildctl takes it: the builders' common definition, platforms as `os/arch[/variant]` text. */
export interface BuildctlBuild extends Omit<BuildDefinition, 'platforms'> {
  connection: BuildkitConnection;
  platforms: string[];
  /** `host/repository` the image is pushed to, by digest only: the task moves the tags. */
  image: string;
  /** `host/repository:tag` of the registry cache, imported and exported. */
  cache?: string;
  secrets: BuildSecret[];
  /** Where buildctl writes the result's digest (`containerimage.digest`). */
  metadataFile: string;
  /** Also export the result as an OCI layout into this folder. */
  outputPath?: string;
}

/**
 * `--output`, `--secret` and the cache options are read as CSV records (Go's encoding/csv), so a
 * field holding a comma or a quote is quoted whole.
 */
function csvField(field: string): string {
  return /[",\r\n]/.test(field) ? `"${field.replace(/"/g, '""')}"` : field;
}

/**
 * `buildctl build` of a Dockerfile, its progress as JSON lines (the task writes the log itself).
 * The image is pushed by digest (`push-by-digest`): no tag moves until the task has the digest.
 * With SOURCE_DATE_EPOCH every time stamp, also in the layers' files, becomes that time
 * (`rewrite-timestamp`), as the assemble builder does it.
 */
export function buildctlArgs(build: BuildctlBuild): string[] {
  const { connection } = build;
  const args = ['--addr', connection.address, '--tlscacert', connection.caFile, '--tlscert', connection.certFile, '--tlskey', connection.keyFile];
  args.push('build', '--frontend', 'dockerfile.v0');
  args.push('--local', `context=${build.context}`, '--local', `dockerfile=${dirname(build.dockerfile)}`, '--opt', `filename=${basename(build.dockerfile)}`);
  for (const [name, value] of build.buildArgs) args.push('--opt', `build-arg:${name}=${value}`);
  if (build.sourceDateEpoch !== undefined && !build.buildArgs.has('SOURCE_DATE_EPOCH')) args.push('--opt', `build-arg:SOURCE_DATE_EPOCH=${build.sourceDateEpoch}`);
  if (build.target) args.push('--opt', `target=${build.target}`);
  args.push('--opt', `platform=${build.platforms.join(',')}`);
  for (const [key, value] of Object.entries(build.labels)) args.push('--opt', `label:${key}=${value}`);
  for (const secret of build.secrets) args.push('--secret', `id=${csvField(secret.id)},env=${secret.variable}`);
  if (build.cache) {
    args.push('--import-cache', `type=registry,${csvField(`ref=${build.cache}`)}`);
    args.push('--export-cache', `type=registry,${csvField(`ref=${build.cache}`)},mode=max`);
  }
  const timestamps = build.sourceDateEpoch !== undefined ? ',rewrite-timestamp=true' : '';
  args.push('--output', `type=image,${csvField(`name=${build.image}`)},push=true,push-by-digest=true${timestamps}`);
  if (build.outputPath) args.push('--output', `type=oci,${csvField(`dest=${build.outputPath}`)},tar=false${timestamps}`);
  args.push('--metadata-file', build.metadataFile, '--progress', 'rawjson');
  return args;
}

/**
 * Inherited settings that would change what buildctl does behind the task's back:
 * BUILDKIT_NO_CLIENT_TOKEN makes buildctl hand the raw login to the daemon instead of tokens
 * (progress then shows `[auth] sharing credentials`), and other credential stores would add logins.
 */
const INHERITED_BUT_IGNORED = ['BUILDKIT_NO_CLIENT_TOKEN', 'DOCKER_AUTH_CONFIG', 'REGISTRY_AUTH_FILE', 'BUILDKIT_HOST'];

/**
 * buildctl's environment: the agent's (build secrets are read from it by name), minus settings that
 * would leak or add credentials, plus the private docker config folder and `changes` (a value
 * replaces, undefined removes: the agent's CA bundle and proxy).
 */
export function buildctlEnvironment(inherited: NodeJS.ProcessEnv, dockerConfig: string, changes: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...inherited };
  for (const name of INHERITED_BUT_IGNORED) delete env[name];
  env.DOCKER_CONFIG = dockerConfig;
  for (const [name, value] of Object.entries(changes)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

export interface RunBuildctlOptions {
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** Receives the progress lines. */
  progress: BuildkitProgress;
  /** Aborting stops buildctl with SIGINT, which cancels the build on the daemon; SIGKILL follows after BUILDCTL_STOP_GRACE_MS. */
  signal?: AbortSignal;
  /** For the error lines: the input names and values the user can fix. */
  describe: { address: string; certificates: string };
}

/** How long a stopped buildctl may take to cancel the build on the daemon; within the agent's 7.5 s between SIGINT and SIGTERM. */
const BUILDCTL_STOP_GRACE_MS = 3000;

/** Runs buildctl; progress goes to the log as it arrives. Rejects with one line in the task's words. */
export async function runBuildctl(args: string[], options: RunBuildctlOptions): Promise<void> {
  options.logger.debug(`buildctl ${args.join(' ')}`);
  // Not progress: buildctl's error and the Dockerfile excerpt it prints around the failing line.
  const text: string[] = [];
  const { code } = await runCli('buildctl', args, {
    env: options.env,
    onStderrLine: (line) => {
      if (options.progress.line(line)) return;
      text.push(line);
      options.logger.info(line);
    },
    onStdoutLine: (line) => options.logger.debug(line),
    signal: options.signal,
    stopSignal: 'SIGINT',
    stopGraceMs: BUILDCTL_STOP_GRACE_MS,
    notFound: 'buildctl was not found on PATH; use the agent image, which ships it, or install buildctl on the agent.',
  });
  options.signal?.throwIfAborted();
  if (code !== 0) throw buildctlFailure(text, options.progress, options.describe);
}

/** Errors of a connection the daemon ended during the TLS handshake: it wants a client certificate it trusts. */
const CLIENT_CERTIFICATE_REFUSED = /certificate required|bad certificate|unknown certificate authority|broken pipe|connection reset by peer/;
/** Errors of buildctl checking the daemon's certificate against ca.pem. */
const SERVER_CERTIFICATE_UNTRUSTED = /x509: [^"(]*[^"( ]/;
const UNREACHABLE = /connection refused|no such host|i\/o timeout|network is unreachable|no route to host|deadline exceeded|server misbehaving/;

/**
 * One error line for a failed buildctl: a daemon that cannot be reached or refuses the client
 * certificate, a step that failed (file and line as BuildKit printed them, exit code, last output
 * lines), or BuildKit's own message.
 */
export function buildctlFailure(text: string[], progress: BuildkitProgress, describe: { address: string; certificates: string }): UserError {
  const errorLine = [...text].reverse().find((line) => line.startsWith('error: '));
  const message = (errorLine ?? text.at(-1) ?? 'buildctl failed without a message').replace(/^error: /, '').replace(/^failed to solve: /, '');
  if (!progress.started) {
    const cause = (pattern: RegExp) => pattern.exec(message)?.[0];
    const untrusted = cause(SERVER_CERTIFICATE_UNTRUSTED);
    if (untrusted) {
      return new UserError(
        `The BuildKit daemon at ${describe.address} presented a certificate that ca.pem in ${describe.certificates} does not vouch for (${untrusted}): use the CA that issued the builder's certificate, and an address that certificate names.`,
      );
    }
    const refused = cause(CLIENT_CERTIFICATE_REFUSED);
    if (refused) {
      return new UserError(
        `The BuildKit daemon at ${describe.address} refused the client certificate in ${describe.certificates} (${refused}): it accepts only certificates from the CA it was given. Use the client certificate issued with the builder's (the agent chart mounts it into its agents).`,
      );
    }
    const unreachable = cause(UNREACHABLE);
    if (unreachable) {
      return new UserError(`Cannot reach the BuildKit daemon at ${describe.address} (${unreachable}): check buildkitAddress, that the builder is running, and that its NetworkPolicy admits this agent.`);
    }
  }
  const failed = progress.failedStep();
  if (failed) {
    // buildctl prints the failing line as `<file>:<line>` above an excerpt of the Dockerfile.
    const location = [...text].reverse().find((line) => /^\S+:\d+$/.test(line.trim()))?.trim();
    const step = failed.name.replace(/^\[[^\]]*\] /, '');
    const exitCode = /exit code: (\d+)/.exec(failed.error)?.[1];
    const output = failed.output.filter((line) => line.trim()).slice(-3);
    const what = exitCode ? `${step} failed with exit code ${exitCode}` : `${step} failed: ${failed.error}`;
    return new UserError(`${location ? `${location}: ` : ''}${what}${output.length ? `; its last output: ${output.join(' | ')}` : ''}`);
  }
  return new UserError(`BuildKit failed: ${message}`);
}
