/** A `WWW-Authenticate: Bearer realm=…,service=…,scope=…` challenge (RFC 6750, distribution token auth). */
export interface BearerChallenge {
  realm: string;
  service: string;
  scope?: string;
  /** `insufficient_scope` when the token was valid but lacked an action. */
  error?: string;
}

/** Parses a Bearer challenge; undefined for Basic or anything else. */
export function parseBearerChallenge(header: string | undefined): BearerChallenge | undefined {
  if (!header) return undefined;
  const match = /^\s*Bearer\s+(.*)$/is.exec(header);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  // Values are quoted strings (which may contain commas, as scopes do) or bare tokens.
  for (const [, key, quoted, bare] of match[1].matchAll(/([a-zA-Z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g)) {
    params[key.toLowerCase()] = quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : bare;
  }
  if (!params.realm) return undefined;
  return { realm: params.realm, service: params.service ?? '', scope: params.scope, error: params.error };
}
