// The gate's rules: which severities fail the run, and how old a vulnerability database may be.
// Trivy itself never checks the age of a database it downloaded (it only compares NextUpdate with
// the clock to decide whether to download again), so the age is read from the metadata.json of the
// database the scan actually used.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ContentError, InputError } from '../errors.js';
import { SEVERITIES, type Finding, type Severity } from './findings.js';

/**
 * `CRITICAL,HIGH` (any case, commas or spaces) → the severities that fail the run. `none` or an
 * empty value reports without failing.
 */
export function parseFailOn(value: string, input = 'failOn'): Severity[] {
  const words = value.split(/[\s,]+/).map((word) => word.trim().toUpperCase()).filter(Boolean);
  if (words.length === 0 || (words.length === 1 && words[0] === 'NONE')) return [];
  const unknown = words.filter((word) => !(SEVERITIES as readonly string[]).includes(word));
  if (unknown.length > 0) throw new InputError(input, `'${unknown.join(', ')}' is not a severity; list some of ${SEVERITIES.join(', ')}, or none.`);
  return SEVERITIES.filter((severity) => words.includes(severity));
}

/** `5d 3h`, `3d`, `7h 12m`, `9m`: ages as people read them, to the minute. */
export function formatAge(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const rest = minutes % 60;
  if (days > 0) return hours > 0 ? `${days}d ${hours}h` : `${days}d`;
  if (hours > 0) return rest > 0 ? `${hours}h ${rest}m` : `${hours}h`;
  return `${rest}m`;
}

/** The fields of trivy-db's metadata.json the gate reads. */
export interface DatabaseMetadata {
  updatedAt: Date;
  nextUpdate?: Date;
}

/**
 * Reads `<cache>/<folder>/metadata.json` as Trivy left it after downloading (`db` for the
 * vulnerability database, `java-db` for the Java one); undefined when Trivy did not need that
 * database (the Java one is only fetched for images with jars).
 */
export async function readDatabaseMetadata(cacheDir: string, folder: 'db' | 'java-db'): Promise<DatabaseMetadata | undefined> {
  const path = join(cacheDir, folder, 'metadata.json');
  const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (text === undefined) return undefined;
  let parsed: { UpdatedAt?: string; NextUpdate?: string };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw new ContentError(`The vulnerability database's metadata.json is not JSON; the database artifact is damaged: import it again.`);
  }
  const updatedAt = new Date(parsed.UpdatedAt ?? '');
  if (Number.isNaN(updatedAt.getTime())) throw new ContentError(`The vulnerability database's metadata.json has no UpdatedAt; the database artifact is damaged: import it again.`);
  const nextUpdate = parsed.NextUpdate ? new Date(parsed.NextUpdate) : undefined;
  return { updatedAt, nextUpdate };
}

/** Findings whose severity is listed in `failOn`: what the `vulnerabilities` output counts. */
export function blockingFindings(findings: readonly Finding[], failOn: readonly Severity[]): Finding[] {
  return findings.filter((finding) => failOn.includes(finding.severity));
}
