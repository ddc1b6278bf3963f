// PrivateAcrScanImage@1's core: scan an image in the private registry (by digest) or on disk with
// Trivy, using vulnerability databases mirrored into the private registry, and decide the gate.
// Everything the run needs to keep private (registry logins, the databases, unpacked archives)
// lives in one owner-only folder that is removed afterwards, also on cancel.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeDockerConfig, type RegistryLogin } from '../acr/dockerConfig.js';
import { openRegistrySession, type RegistryAuth, type RegistrySession } from '../acr/session.js';
import { InputError } from '../errors.js';
import type { TransportOptions } from '../http/transport.js';
import type { Logger, SecretRegistry } from '../log.js';
import { formatImageReference, type ImageReference } from '../oci/reference.js';
import { checkDatabaseArtifact, importHint, TRIVY_DB_LAYER, TRIVY_DB_SOURCE, TRIVY_JAVA_DB_SOURCE } from './database.js';
import { countBySeverity, parseTrivyReport, renameArtifact, scannedTargets, sortFindings, type Finding, type ScannedTarget, type Severity, type SeverityCounts } from './findings.js';
import { blockingFindings, formatAge, readDatabaseMetadata } from './gate.js';
import { prepareImageFile } from './imageFile.js';
import { renderJUnit } from './junit.js';
import { renderSarif } from './sarif.js';
import { runTrivy, trivyEnvironment, trivyImageArgs, TrivyError, type TrivyInput } from './trivy.js';

export interface ScanImageOptions {
  /** Login server of the private registry. */
  registry: string;
  auth: RegistryAuth;
  /** What to scan: an image in `registry` (by tag or digest), or an image on disk. */
  subject: { kind: 'image'; reference: ImageReference } | { kind: 'imagePath'; path: string };
  /** The vulnerability database artifact, `host/repository:tag`. */
  databaseRepository: ImageReference;
  /** The Java database artifact, `host/repository:tag`. */
  javaDatabaseRepository: ImageReference;
  /** Severities that fail the gate; empty: report only. */
  failOn: Severity[];
  ignoreUnfixed: boolean;
  ignoreFile?: string;
  /** Oldest database (by its UpdatedAt) the gate accepts. */
  maxDatabaseAgeMs: number;
  /** Where the SARIF report goes. */
  reportPath: string;
  /** Where the JUnit report goes. */
  junitPath: string;
  /** A private folder (the task's own temp folder): the run's folder for logins, caches and unpacked images is made inside and removed afterwards. */
  tempDir: string;
  /** Aborts when the job is cancelled: Trivy is stopped. */
  signal?: AbortSignal;
  transport?: TransportOptions;
  logger: Logger;
  secrets: SecretRegistry;
  /** Default `trivy` from PATH. */
  trivyPath?: string;
  /** Trivy's bound on the scan, downloads included. Default 600 s. */
  timeoutSeconds?: number;
  now?: () => Date;
}

export interface DatabaseUsed {
  reference: string;
  updatedAt: Date;
  ageMs: number;
}

export interface ScanImageResult {
  /** What was scanned: `host/repository@digest`, or the path on disk. */
  subject: string;
  targets: ScannedTarget[];
  /** Every finding, most severe first. */
  findings: Finding[];
  counts: SeverityCounts;
  failOn: Severity[];
  /** Findings whose severity is in failOn: the `vulnerabilities` output counts them. */
  blocking: Finding[];
  database: DatabaseUsed;
  /** Only when the image had jars and Trivy fetched it. */
  javaDatabase?: DatabaseUsed;
  maxDatabaseAgeMs: number;
  reportPath: string;
  junitPath: string;
  /** Why the gate fails, as the task's one error line; undefined when it passes. */
  failure?: string;
}

export async function scanImage(options: ScanImageOptions): Promise<ScanImageResult> {
  // One identity for every host the scan touches (image, databases), sharing one token exchange.
  const session = openRegistrySession({ host: options.registry, auth: options.auth, transport: options.transport, logger: options.logger, secrets: options.secrets });
  // mkdtemp makes the folder owner-only.
  const folder = await mkdtemp(join(options.tempDir, 'scan-image-'));
  try {
    return await scanIn(folder, session, options);
  } finally {
    await rm(folder, { recursive: true, force: true });
    await session.close();
  }
}

async function scanIn(folder: string, session: RegistrySession, options: ScanImageOptions): Promise<ScanImageResult> {
  const now = options.now ?? (() => new Date());
  const database = formatImageReference(options.databaseRepository);
  const javaDatabase = formatImageReference(options.javaDatabaseRepository);
  const hosts = [...new Set([options.registry, options.databaseRepository.host!, options.javaDatabaseRepository.host!])];

  // Trivy needs the logins (go-containerregistry trades an ACR refresh token for access tokens at
  // the realm itself; a registry that lets anyone in gets none) and where the image is; the checks
  // that turn its failures into clear ones (the image exists, the database artifact is whole) run
  // beside it, and stop it when they fail.
  const [input, logins] = await Promise.all([trivyInput(options, folder), Promise.all(hosts.map(async (host) => [host, await session.loginFor(host)] as const))]);
  const cacheDir = join(folder, 'cache');
  const scratch = join(folder, 'tmp');
  await Promise.all([mkdir(cacheDir), mkdir(scratch, { recursive: true })]);
  await writeDockerConfig(join(folder, 'config.json'), new Map(logins.filter((entry): entry is readonly [string, RegistryLogin] => entry[1] !== undefined)), options.secrets);
  const caFile = await writeCaBundle(folder, options.transport?.caCertificates);
  const jsonPath = join(folder, 'report.json');
  const timeoutSeconds = options.timeoutSeconds ?? 600;
  const stop = new AbortController();
  const checked = Promise.all([
    checkImage(options, session),
    session
      .clientFor(options.databaseRepository.host!)
      .repository(options.databaseRepository.repository)
      .getManifest(options.databaseRepository.tag ?? options.databaseRepository.digest!)
      .then((manifest) => checkDatabaseArtifact('databaseRepository', database, TRIVY_DB_SOURCE, TRIVY_DB_LAYER, manifest)),
  ]);
  checked.catch(() => stop.abort());
  const imageReference = options.subject.kind === 'image' ? options.subject.reference : undefined;
  const named = options.subject.kind === 'image' ? formatImageReference({ ...options.subject.reference, host: options.registry }) : options.subject.path;
  options.logger.info(`Scanning ${named} with the databases ${database} and ${javaDatabase}`);
  try {
    await runTrivy(
      trivyImageArgs({ input, cacheDir, databaseRepository: database, javaDatabaseRepository: javaDatabase, outputPath: jsonPath, ignoreUnfixed: options.ignoreUnfixed, ignoreFile: options.ignoreFile, caFile, timeoutSeconds }),
      {
        trivyPath: options.trivyPath,
        env: trivyEnvironment(process.env, { dockerConfig: folder, tempDir: scratch, proxy: options.transport?.proxy, hosts }),
        cwd: folder,
        logger: options.logger,
        killAfterMs: (timeoutSeconds + 60) * 1000,
        // Stopped when a check fails, or when the job is cancelled.
        signal: options.signal ? AbortSignal.any([stop.signal, options.signal]) : stop.signal,
      },
    );
  } catch (error) {
    // A failed check says what is wrong in the task's terms; Trivy's own error comes second.
    await checked;
    throw explainTrivyFailure(error, javaDatabase);
  }
  const [pinned] = await checked;
  const parsed = parseTrivyReport(await readFile(jsonPath, 'utf8'));
  // The digest Trivy scanned, from its own report: a tag could have moved since the check.
  const scanned = imageReference && parsed.Metadata?.RepoDigests?.find((digest) => digest.startsWith(`${options.registry}/${imageReference.repository}@`));
  const subject = scanned ?? pinned;
  const report = renameArtifact(parsed, input.kind === 'file' ? input.path : subject, subject);
  const targets = scannedTargets(report);
  const findings = sortFindings(targets.flatMap((target) => target.findings));
  const blocking = blockingFindings(findings, options.failOn);
  await Promise.all([mkdir(dirname(options.reportPath), { recursive: true }), mkdir(dirname(options.junitPath), { recursive: true })]);
  await Promise.all([writeFile(options.reportPath, renderSarif(report)), writeFile(options.junitPath, renderJUnit(subject, targets, options.failOn))]);

  const used = async (folderName: 'db' | 'java-db', reference: string): Promise<DatabaseUsed | undefined> => {
    const metadata = await readDatabaseMetadata(cacheDir, folderName);
    return metadata && { reference, updatedAt: metadata.updatedAt, ageMs: now().getTime() - metadata.updatedAt.getTime() };
  };
  const [vulnerabilityDb, javaDb] = await Promise.all([used('db', database), used('java-db', javaDatabase)]);
  if (!vulnerabilityDb) throw new Error(`Trivy finished without leaving ${cacheDir}/db/metadata.json`);

  const result: ScanImageResult = {
    subject, targets, findings, counts: countBySeverity(findings), failOn: options.failOn, blocking,
    database: vulnerabilityDb, javaDatabase: javaDb, maxDatabaseAgeMs: options.maxDatabaseAgeMs,
    reportPath: options.reportPath, junitPath: options.junitPath,
  };
  result.failure = gateFailure(result);
  return result;
}

/** The gate's verdict as one line: a stale database first (its findings cannot be trusted), then the findings. */
export function gateFailure(result: Omit<ScanImageResult, 'failure'>): string | undefined {
  const stale = [
    { input: 'databaseRepository', used: result.database, source: TRIVY_DB_SOURCE },
    { input: 'javaDatabaseRepository', used: result.javaDatabase, source: TRIVY_JAVA_DB_SOURCE },
  ].find(({ used }) => used && used.ageMs > result.maxDatabaseAgeMs);
  if (stale?.used) {
    return `The vulnerability database ${stale.used.reference} is ${formatAge(stale.used.ageMs)} old (built ${stale.used.updatedAt.toISOString()}), older than maxDatabaseAge ${formatAge(result.maxDatabaseAgeMs)}: ${importHint(stale.used.reference, stale.source)}.`;
  }
  if (result.blocking.length === 0) return undefined;
  const ids = [...new Set(result.blocking.map((finding) => finding.id))];
  const shown = ids.slice(0, 5).join(', ') + (ids.length > 5 ? ` and ${ids.length - 5} more` : '');
  return `${result.blocking.length} ${result.blocking.length === 1 ? 'vulnerability' : 'vulnerabilities'} at ${result.failOn.join(', ')} in ${result.subject} (${shown}): update the packages that have a fix (the run summary lists the fixed versions), or list the vulnerabilities you accept in ignoreFile.`;
}

/** What Trivy opens: the image in the registry as named, or the image on disk, unpacked if Trivy cannot read it as it is. */
async function trivyInput(options: ScanImageOptions, folder: string): Promise<TrivyInput> {
  if (options.subject.kind === 'image') return { kind: 'registry', reference: formatImageReference({ ...options.subject.reference, host: options.registry }) };
  const scratch = join(folder, 'image');
  await mkdir(scratch);
  const prepared = await prepareImageFile(options.subject.path, scratch);
  options.logger.info(`${options.subject.path} is an ${prepared.format}`);
  return { kind: 'file', path: prepared.path };
}

/** Checks a registry image exists and names it by digest; an image on disk by its path. */
async function checkImage(options: ScanImageOptions, session: RegistrySession): Promise<string> {
  if (options.subject.kind === 'imagePath') return options.subject.path;
  const reference = options.subject.reference;
  const manifest = await session.client.repository(reference.repository).getManifest(reference.digest ?? reference.tag!);
  if (!manifest) {
    throw new InputError('image', `${formatImageReference({ ...reference, host: options.registry })} does not exist in the registry; check the repository and tag, or pass the push step's imageRef output.`);
  }
  return formatImageReference({ host: options.registry, repository: reference.repository, digest: reference.digest ?? manifest.digest });
}

/** Extra CAs for Trivy: the agent's certificate settings and NODE_EXTRA_CA_CERTS, as the task's own client trusts them. */
async function writeCaBundle(folder: string, caCertificates: string[] | undefined): Promise<string | undefined> {
  const extra = process.env.NODE_EXTRA_CA_CERTS ? await readFile(process.env.NODE_EXTRA_CA_CERTS, 'utf8').catch(() => '') : '';
  const pems = [...(caCertificates ?? []), extra].filter((pem) => pem.trim());
  if (pems.length === 0) return undefined;
  const path = join(folder, 'ca.pem');
  await writeFile(path, pems.join('\n'), { mode: 0o600 });
  return path;
}

/**
 * Trivy's errors in terms of the task's inputs. The vulnerability database was checked before the
 * scan; the Java one is only fetched for images with jars, so a missing copy shows up here, and
 * Trivy reports it only as the registry's MANIFEST_UNKNOWN.
 */
function explainTrivyFailure(error: unknown, javaDatabase: string): unknown {
  if (!(error instanceof TrivyError)) return error;
  if (/java/i.test(error.fatal) && /MANIFEST_UNKNOWN|NAME_UNKNOWN/.test(error.fatal)) {
    return new InputError('javaDatabaseRepository', `${javaDatabase} does not exist in the registry (MANIFEST_UNKNOWN), and the image holds Java archives; ${importHint(javaDatabase, TRIVY_JAVA_DB_SOURCE)}.`);
  }
  return error;
}
