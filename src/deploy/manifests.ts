// Reading manifest files into Kubernetes objects and substituting images, before anything is sent.
// Every problem here is found for all files at once, so a pipeline fails before half a release is applied.
import { readFile } from 'node:fs/promises';
// js-yaml rather than the `yaml` package used elsewhere: several times faster on hundreds of
// documents, and client-node bundles it anyway.
import { loadAll, YAMLException } from 'js-yaml';
import { InputError } from '../errors.js';
import type { Logger } from '../log.js';

export interface KubernetesManifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [key: string]: unknown };
  [key: string]: unknown;
}

/** Where an object came from, for messages: `k8s/web.yaml (document 2)`. */
export interface LoadedManifest {
  object: KubernetesManifest;
  source: string;
}

/**
 * Parses every YAML document of every file. Empty documents are skipped (a trailing `---`), `List`
 * objects are flattened as kubectl does; a document that is not valid YAML, not a mapping, or
 * lacks `apiVersion`, `kind` or `metadata.name` is an InputError naming the file and the line
 * (invalid YAML) or the document (anything else).
 */
export async function loadManifests(files: readonly string[]): Promise<LoadedManifest[]> {
  if (files.length === 0) throw new InputError('manifests', 'the patterns matched no file; check the paths relative to the working directory.');
  const loaded: LoadedManifest[] = [];
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    let documents = 0;
    try {
      loadAll(text, (value: unknown) => {
        const source = `${file} (document ${++documents})`;
        if (value === null || value === undefined) return;
        for (const object of flattenList(value, source)) loaded.push({ object: validateObject(object, source), source });
      });
    } catch (error) {
      if (!(error instanceof YAMLException)) throw error;
      throw new InputError('manifests', `${file} is not valid YAML at line ${error.mark.line + 1}: ${error.reason}.`);
    }
  }
  if (loaded.length === 0) throw new InputError('manifests', `${files.join(', ')} hold no Kubernetes objects.`);
  return loaded;
}

function flattenList(value: unknown, source: string): unknown[] {
  if (isRecord(value) && value.kind === 'List' && Array.isArray(value.items)) return value.items as unknown[];
  if (!isRecord(value)) throw new InputError('manifests', `${source} is not a Kubernetes object (a YAML mapping with apiVersion and kind).`);
  return [value];
}

function validateObject(value: unknown, source: string): KubernetesManifest {
  if (!isRecord(value)) throw new InputError('manifests', `${source} is not a Kubernetes object (a YAML mapping with apiVersion and kind).`);
  if (typeof value.kind !== 'string' || !value.kind) throw new InputError('manifests', `${source} has no kind.`);
  if (typeof value.apiVersion !== 'string' || !value.apiVersion) throw new InputError('manifests', `${source} (${value.kind}) has no apiVersion.`);
  const metadata = value.metadata;
  if (!isRecord(metadata) || typeof metadata.name !== 'string' || !metadata.name) {
    throw new InputError('manifests', `${source} (${value.kind}) has no metadata.name; generateName cannot be applied server-side.`);
  }
  return value as KubernetesManifest;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One line of the `images` input: `registry/repository` plus `:tag` or `@digest`. */
export interface ImageSubstitution {
  /** Repository without tag or digest: what container images are matched against. */
  repository: string;
  /** The full reference put in place of a match. */
  reference: string;
}

/**
 * Parses `contoso.azurecr.io/web:1.2.3` or `contoso.azurecr.io/web@sha256:…` (one per line). A line
 * without tag or digest would deploy whatever `latest` is at pull time, so it is refused.
 */
export function parseImageSubstitutions(lines: readonly string[]): ImageSubstitution[] {
  return lines.map((line) => {
    const reference = line.trim();
    const { repository, pinned } = splitImage(reference);
    if (!pinned) throw new InputError('images', `'${reference}' has no tag or digest; write repository:tag or repository@sha256:….`);
    return { repository, reference };
  });
}

/** `host:5000/team/web:1@sha256:…` → repository `host:5000/team/web`; a colon after the last slash starts the tag. */
function splitImage(image: string): { repository: string; pinned: boolean } {
  const at = image.indexOf('@');
  const withoutDigest = at >= 0 ? image.slice(0, at) : image;
  const lastSlash = withoutDigest.lastIndexOf('/');
  const colon = withoutDigest.indexOf(':', lastSlash + 1);
  const repository = colon >= 0 ? withoutDigest.slice(0, colon) : withoutDigest;
  return { repository, pinned: at >= 0 || colon >= 0 };
}

const POD_TEMPLATE_PATHS: Record<string, string[]> = {
  Pod: ['spec'],
  Deployment: ['spec', 'template', 'spec'],
  StatefulSet: ['spec', 'template', 'spec'],
  DaemonSet: ['spec', 'template', 'spec'],
  ReplicaSet: ['spec', 'template', 'spec'],
  Job: ['spec', 'template', 'spec'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
};

interface ContainerSpec {
  image?: string;
}

/** The containers, init containers and ephemeral containers of an object's pod spec, if it has one. */
function containersOf(object: KubernetesManifest): ContainerSpec[] {
  const path = POD_TEMPLATE_PATHS[object.kind];
  if (!path) return [];
  let spec: unknown = object;
  for (const key of path) spec = isRecord(spec) ? spec[key] : undefined;
  if (!isRecord(spec)) return [];
  return ['containers', 'initContainers', 'ephemeralContainers'].flatMap((key) => (Array.isArray(spec[key]) ? (spec[key] as ContainerSpec[]) : []));
}

/**
 * Replaces each container image whose repository equals an entry's repository (its own tag or
 * digest is dropped). Entries that matched no container are reported as warnings: usually a typo,
 * but not fatal, since one `images` list may serve several stages. Returns how many were replaced.
 */
export function substituteImages(manifests: readonly LoadedManifest[], substitutions: readonly ImageSubstitution[], logger: Logger): number {
  const matched = new Set<ImageSubstitution>();
  let replaced = 0;
  for (const { object } of manifests) {
    for (const container of containersOf(object)) {
      if (!container.image) continue;
      const { repository } = splitImage(container.image);
      const substitution = substitutions.find((candidate) => candidate.repository === repository);
      if (!substitution) continue;
      matched.add(substitution);
      if (container.image !== substitution.reference) {
        logger.info(`${object.kind}/${object.metadata.name}: image ${container.image} → ${substitution.reference}`);
        container.image = substitution.reference;
        replaced++;
      }
    }
  }
  for (const substitution of substitutions) {
    if (!matched.has(substitution)) logger.warn(`Input 'images': ${substitution.reference} matches no container image in the manifests (repository ${substitution.repository}).`);
  }
  return replaced;
}
