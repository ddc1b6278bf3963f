import { InputError } from '../errors.js';

// distribution-spec "Pulling manifests": the grammar of repository names and tags.
const PATH_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const REPOSITORY = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

/**
 * Normalises a registry login server as users paste it: `contoso.azurecr.io`, `host:port`, or
 * with an `https://` prefix and trailing slash. Plain http is refused: the tasks send tokens.
 */
export function parseRegistryHost(value: string, input = 'registry'): string {
  let host = value.trim();
  if (/^http:\/\//i.test(host)) throw new InputError(input, `'${value}' uses plain http; give the login server name (for example contoso.azurecr.io), the tasks always use TLS.`);
  host = host.replace(/^https:\/\//i, '').replace(/\/+$/, '');
  if (!host || !HOST.test(host)) {
    throw new InputError(input, `'${value}' is not a registry login server; give a host name such as contoso.azurecr.io, optionally with :port.`);
  }
  return host.toLowerCase();
}

export function validateRepository(value: string, input = 'repository'): string {
  const repository = value.trim().replace(/^\/+|\/+$/g, '');
  if (!REPOSITORY.test(repository) || repository.length > 255) {
    throw new InputError(
      input,
      `'${value}' is not a valid repository name; use lower-case letters, digits and separators (. _ - /), for example team/web-api.`,
    );
  }
  return repository;
}

export function validateTag(value: string, input = 'tags'): string {
  if (!TAG.test(value)) {
    throw new InputError(input, `'${value}' is not a valid tag; a tag is 1-128 letters, digits, '_', '.' or '-', and does not start with '.' or '-'.`);
  }
  return value;
}

/** `host/repository`, with a tag, a digest or both (`name:tag@digest`, as docker prints pinned images). */
export interface ImageReference {
  /** Login server; undefined when the reference names none. */
  host?: string;
  repository: string;
  tag?: string;
  digest?: string;
}

/**
 * Parses `[host/]repository[:tag][@digest]`. The first path component is a host only when it
 * looks like one (has a dot or a port, or is `localhost`), as docker decides; a reference with
 * neither tag nor digest is refused rather than read as `latest`, because a gate must name what it checks.
 */
export function parseImageReference(value: string, input: string): ImageReference {
  const text = value.trim();
  const invalid = (why: string) => new InputError(input, `'${value}' ${why}`);
  const at = text.indexOf('@');
  const digest = at >= 0 ? text.slice(at + 1) : undefined;
  let name = at >= 0 ? text.slice(0, at) : text;
  if (digest !== undefined && !DIGEST.test(digest)) throw invalid('has a malformed digest; write repository@sha256:<64 hex digits>.');
  let tag: string | undefined;
  const lastSlash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = name.slice(colon + 1);
    name = name.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(`has an invalid tag '${tag}'.`);
  }
  let host: string | undefined;
  const firstSlash = name.indexOf('/');
  if (firstSlash > 0) {
    const first = name.slice(0, firstSlash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      if (!HOST.test(first)) throw invalid(`names '${first}', which is not a registry host.`);
      host = first.toLowerCase();
      name = name.slice(firstSlash + 1);
    }
  }
  if (!REPOSITORY.test(name) || name.length > 255) throw invalid('has an invalid repository name; use lower-case letters, digits and separators (. _ - /).');
  if (tag === undefined && digest === undefined) throw invalid('names no tag or digest; write repository:tag or repository@sha256:….');
  return { host, repository: name, tag, digest };
}

/** `host/repository:tag@digest` with the parts that are set. */
export function formatImageReference(reference: ImageReference): string {
  return `${reference.host ? `${reference.host}/` : ''}${reference.repository}${reference.tag ? `:${reference.tag}` : ''}${reference.digest ? `@${reference.digest}` : ''}`;
}
