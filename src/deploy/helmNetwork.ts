// The agent's network settings, in the form helm reads them. helm is a Go program: it trusts the
// system's CAs plus those in SSL_CERT_FILE (crypto/x509 on Linux), and takes its proxy from
// HTTPS_PROXY / HTTP_PROXY / NO_PROXY, lower case first (golang.org/x/net/http/httpproxy). It never
// reads the agent's certificate and proxy settings that the task's own HTTP client uses, so without
// this a private registry CA or a mandatory proxy works for the task and fails for helm.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import type { TransportOptions } from '../http/transport.js';

interface HelmNetworkOptions {
  /** The agent's CA and proxy settings, as the task's HTTP client gets them. */
  transport?: TransportOptions;
  /** A private folder for the CA bundle. */
  folder: string;
  /**
   * Hosts helm reaches without the proxy whatever the bypass list says: the API server, which the
   * task's own Kubernetes client also reaches directly.
   */
  directHosts: readonly string[];
  /** Other hosts helm talks to (the chart's registry and its token server): direct when the agent's bypass list matches them. */
  otherHosts: readonly string[];
}

/** Environment for helm: a value replaces the inherited one, `undefined` removes it. */
export type EnvironmentChanges = Record<string, string | undefined>;

const PROXY_VARIABLES = ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY'];
const NO_PROXY_VARIABLES = ['no_proxy', 'NO_PROXY'];

export async function helmNetworkEnvironment(options: HelmNetworkOptions): Promise<EnvironmentChanges> {
  const changes: EnvironmentChanges = {};
  const extraCas = options.transport?.caCertificates ?? [];
  if (extraCas.length > 0) {
    // SSL_CERT_FILE replaces the system bundle file (the system certificate folders are still read):
    // keep what it named before, and Node's own roots for agents whose image has no CA package.
    const inherited = process.env.SSL_CERT_FILE ? await readFile(process.env.SSL_CERT_FILE, 'utf8').catch(() => '') : '';
    const bundle = join(options.folder, 'ca-bundle.pem');
    await writeFile(bundle, [...rootCertificates, inherited, ...extraCas].filter(Boolean).join('\n'), { mode: 0o600 });
    changes.SSL_CERT_FILE = bundle;
  }
  const proxy = options.transport?.proxy;
  if (proxy) {
    const url = new URL(proxy.url);
    // Go sends userinfo as Proxy-Authorization: Basic. The environment is the child's own; nothing reaches argv.
    if (proxy.username) url.username = proxy.username;
    if (proxy.password) url.password = proxy.password;
    for (const name of PROXY_VARIABLES) changes[name] = url.href;
    const noProxy = noProxyList(proxy.bypass ?? [], options.directHosts, options.otherHosts);
    for (const name of NO_PROXY_VARIABLES) changes[name] = noProxy || undefined;
  }
  return changes;
}

/**
 * NO_PROXY for the agent's bypass list, which holds regular expressions matched against
 * `https://host[:port]` (microsoft/azure-pipelines-agent, AgentWebProxySettings) where Go wants
 * host names and domain suffixes. Entries that are plain host patterns (`contoso\.azurecr\.io`,
 * `^https://.*\.corp\.example$`) are translated; every known host a pattern matches is listed too,
 * so any regular expression works for the hosts the deploy reaches.
 */
export function noProxyList(bypass: readonly string[], directHosts: readonly string[], otherHosts: readonly string[]): string {
  const entries = new Set<string>(directHosts.map(hostName));
  const patterns = bypass.map((pattern) => new RegExp(pattern, 'i'));
  for (const host of otherHosts) {
    const name = hostName(host);
    const forms = [name, `https://${host}`, `https://${host}/`];
    if (patterns.some((pattern) => forms.some((form) => pattern.test(form)))) entries.add(name);
  }
  for (const pattern of bypass) {
    const translated = hostPattern(pattern);
    if (translated) entries.add(translated);
  }
  return [...entries].join(',');
}

/** `host:port` or `[v6]:port` → the host alone, as NO_PROXY matches names for every port. */
function hostName(host: string): string {
  return new URL(`https://${host}`).hostname.replace(/^\[|\]$/g, '');
}

function hostPattern(pattern: string): string | undefined {
  const text = pattern
    .replace(/^\^/, '')
    .replace(/^https?\??:(?:\\?\/){2}/, '')
    .replace(/(?:\\?\/)?\$?$/, '');
  const suffix = /^\.\*(?:\\\.)?/.exec(text);
  const rest = (suffix ? text.slice(suffix[0].length) : text).replace(/\\([.-])/g, '$1');
  if (!/^[a-z0-9-]+(?:\.[a-z0-9-]+)*$/i.test(rest)) return undefined;
  return suffix ? `.${rest}` : rest;
}
