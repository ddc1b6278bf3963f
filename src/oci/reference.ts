import { InputError } from '../errors.js';

// distribution-spec "Pulling manifests": the grammar of repository names and tags.
const PATH_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const REPOSITORY = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
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
