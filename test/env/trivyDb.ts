// Trivy vulnerability databases for the scan tests, made and served the way the real one is:
// trivy-db's fixture loader writes trivy.db and metadata.json (scripts/tools/trivy-db-fixture), the
// two are packed as db.tar.gz, and oras pushes that as the single layer of an artifact with the
// media types and title annotation of ghcr.io/aquasecurity/trivy-db (its publishing workflow runs
// the same `oras push`).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { registryTrustArgs, testToolPath, type RegistryClientTrust } from './environment.js';
import { runTool } from './processes.js';

export const TRIVY_DB_CONFIG_MEDIA_TYPE = 'application/vnd.aquasec.trivy.config.v1+json';
export const TRIVY_DB_LAYER_MEDIA_TYPE = 'application/vnd.aquasec.trivy.db.layer.v1.tar+gzip';

export interface TrivyDbOptions {
  /** YAML bolt fixtures (trivy-db's bucket layout). */
  fixtures: string[];
  /** metadata.json `UpdatedAt`; default now. */
  updatedAt?: Date;
  /** For large generated fixtures (the benchmark's); default 120 s. */
  timeoutMs?: number;
}

/** Writes `<dir>/db.tar.gz` holding trivy.db and metadata.json; returns its path. */
export async function buildTrivyDb(dir: string, options: TrivyDbOptions): Promise<string> {
  const assets = join(dir, 'assets');
  await mkdir(assets, { recursive: true });
  const updatedAt = options.updatedAt ? ['-updated-at', options.updatedAt.toISOString().replace(/\.\d+Z$/, 'Z')] : [];
  await runTool(testToolPath('trivy-db-fixture'), ['-output', assets, ...updatedAt, ...options.fixtures], { timeoutMs: options.timeoutMs });
  const archive = join(dir, 'db.tar.gz');
  await runTool('tar', ['-czf', archive, '-C', assets, 'trivy.db', 'metadata.json']);
  return archive;
}

/**
 * Pushes a db.tar.gz to `reference` (`host/repository:tag`) exactly as trivy-db publishes it;
 * returns the manifest digest. oras names the layer after the file it was given, which is why it
 * runs in the archive's folder with the bare name (Trivy saves the layer under that title).
 */
export async function publishTrivyDb(archive: string, reference: string, trust: RegistryClientTrust): Promise<string> {
  const folder = join(archive, '..');
  const name = archive.slice(folder.length + 1);
  const { stdout } = await runTool(
    testToolPath('oras'),
    ['push', ...registryTrustArgs.oras(trust), '--artifact-type', TRIVY_DB_CONFIG_MEDIA_TYPE, '--format', 'go-template={{.digest}}', reference, `${name}:${TRIVY_DB_LAYER_MEDIA_TYPE}`],
    { cwd: folder, env: trust.toolEnv },
  );
  return stdout.trim();
}
