// The Trivy databases as OCI artifacts (trivy.dev docs "self-hosting"; aquasecurity/trivy-db):
// one layer, `db.tar.gz` holding trivy.db and metadata.json, with its own media type and a title
// annotation Trivy saves the download under. A copy that lost either (a plain `oras push` of the
// file, aquasecurity/trivy#6829) fails inside Trivy with a message about neither, so the gate
// looks at the manifest first.
import { InputError } from '../errors.js';
import { isIndexMediaType, type ImageManifest } from '../oci/mediaTypes.js';

export const TRIVY_DB_LAYER = 'application/vnd.aquasec.trivy.db.layer.v1.tar+gzip';
export const TRIVY_DB_SOURCE = 'ghcr.io/aquasecurity/trivy-db:2';
export const TRIVY_JAVA_DB_SOURCE = 'ghcr.io/aquasecurity/trivy-java-db:1';
const TITLE = 'org.opencontainers.image.title';

/** What to run so `reference` holds the database again: the import step users schedule. */
export function importHint(reference: string, source: string): string {
  const [host, ...path] = reference.split('/');
  return `refresh it with the scheduled PrivateAcrImport step (images: ${source} ${path.join('/')}) into ${host}`;
}

/**
 * Checks the manifest `reference` holds is a Trivy database artifact as published upstream.
 * `manifest` is undefined when the registry has nothing under that tag.
 */
export function checkDatabaseArtifact(input: string, reference: string, source: string, layerMediaType: string, manifest: { mediaType: string; bytes: Buffer } | undefined): void {
  if (!manifest) throw new InputError(input, `${reference} does not exist in the registry (MANIFEST_UNKNOWN); ${importHint(reference, source)}.`);
  if (isIndexMediaType(manifest.mediaType)) throw new InputError(input, `${reference} is an image index, not a Trivy database artifact; point it at the copy of ${source}.`);
  let parsed: Partial<ImageManifest>;
  try {
    parsed = JSON.parse(manifest.bytes.toString('utf8')) as Partial<ImageManifest>;
  } catch {
    throw new InputError(input, `${reference} has a manifest that is not JSON; ${importHint(reference, source)}.`);
  }
  const layers = parsed.layers ?? [];
  const layer = layers[0];
  if (layers.length !== 1 || layer.mediaType !== layerMediaType || !layer.annotations?.[TITLE]) {
    const found = layers.map((entry) => entry.mediaType).join(', ') || 'no layers';
    throw new InputError(
      input,
      `${reference} is not a Trivy database as published (one ${layerMediaType} layer with a title annotation; it has ${found}): it was copied without its media types — ${importHint(reference, source)}, which keeps them.`,
    );
  }
}
