// From where the task runs: do a resource's names resolve to private addresses? A public answer
// means this agent would reach the resource over the internet (or not at all once public access is
// closed), however private the resource is. One code path serves every resource: the registry
// (login server and one data endpoint per replica region, each needing a private DNS record:
// https://learn.microsoft.com/azure/container-registry/container-registry-private-link) and the
// Terraform state account (its blob endpoint).
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import type { Registry } from '@azure/arm-containerregistry';
import { azCommand, type CheckResult, type ResourceRef } from './checks.js';

/** Answers a host name with its addresses, as the HTTP client would connect to them. */
export interface HostResolver {
  resolve(host: string): Promise<string[]>;
}

/** The system resolver (getaddrinfo: hosts file, then DNS), which is what the push and deploy tasks connect through. */
export const systemResolver: HostResolver = {
  resolve: async (host) => (await lookup(host, { all: true, verbatim: true })).map((answer) => answer.address),
};

// RFC 1918, the shared address space Azure VNets may also use (RFC 6598), and IPv6 unique local addresses.
const PRIVATE_RANGES = new BlockList();
PRIVATE_RANGES.addSubnet('10.0.0.0', 8, 'ipv4');
PRIVATE_RANGES.addSubnet('172.16.0.0', 12, 'ipv4');
PRIVATE_RANGES.addSubnet('192.168.0.0', 16, 'ipv4');
PRIVATE_RANGES.addSubnet('100.64.0.0', 10, 'ipv4');
PRIVATE_RANGES.addSubnet('fc00::', 7, 'ipv6');

export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  return family !== 0 && PRIVATE_RANGES.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** A name a client of the resource connects to, and what it is for (shown in the evidence). */
export interface ResourceHost {
  host: string;
  /** e.g. `login server`, `data endpoint (northeurope)`, `blob endpoint`. */
  role: string;
}

export interface PrivateDnsCheck {
  id: string;
  title: string;
  /** As in CheckResult, e.g. `registry 'contoso'`. */
  resource: string;
  hosts: ResourceHost[];
  /** Evidence when there is no name to resolve. */
  noHosts: string;
  /** The command that makes the names that did not resolve privately do so. */
  fix: (failing: ResourceHost[]) => string;
}

/** Resolves every name at once; the check passes when each answers with private addresses only. */
export async function checkPrivateDns(check: PrivateDnsCheck, resolver: HostResolver): Promise<CheckResult> {
  const answers = await Promise.all(
    check.hosts.map(async (target) => {
      try {
        const addresses = await resolver.resolve(target.host);
        const publicOnes = addresses.filter((address) => !isPrivateAddress(address));
        const ok = addresses.length > 0 && publicOnes.length === 0;
        return { target, ok, text: `${target.role} ${target.host} → ${addresses.join(', ')}${publicOnes.length ? ' (not private)' : ''}` };
      } catch (error) {
        return { target, ok: false, text: `${target.role} ${target.host} → no answer (${(error as NodeJS.ErrnoException).code ?? String(error)})` };
      }
    }),
  );
  const failing = answers.filter((answer) => !answer.ok).map((answer) => answer.target);
  const passed = answers.length > 0 && failing.length === 0;
  return {
    id: check.id,
    title: check.title,
    severity: 'high',
    resource: check.resource,
    status: passed ? 'pass' : 'fail',
    evidence: answers.length ? answers.map((answer) => answer.text).join('; ') : check.noHosts,
    fix: passed ? undefined : check.fix(failing),
  };
}

/** The Azure region name ARM's `location` stands for: `China North 3` → `chinanorth3`. */
function regionName(location: string): string {
  return location.replace(/\s+/g, '').toLowerCase();
}

/**
 * The names a client of the registry resolves: the login server, and one data endpoint per region
 * the registry has a replica in (the home region included), `<name>.<region>.data.<suffix>`, which
 * layer downloads are redirected to.
 *
 * The rule for the data endpoints: ARM lists them in `dataEndpointHostNames` only while dedicated
 * data endpoints are on (`dataEndpointEnabled`). A private endpoint serves the same per-region
 * names whether or not they are on (the ACR endpoint reference: data endpoints serve blobs "for
 * registries with dedicated data endpoints or private endpoints"), so with an approved private
 * endpoint the names are derived from the login server and the replica regions. With neither,
 * blobs come from storage accounts ACR manages, whose names no API gives: only the login server
 * is checked then.
 */
export function registryHostNames(registry: Registry, replicaLocations: string[], hasApprovedPrivateEndpoint: boolean): ResourceHost[] {
  const loginServer = registry.loginServer;
  if (!loginServer) return [];
  const [name, ...suffix] = loginServer.split('.');
  const dataHosts = new Map<string, string>();
  for (const host of registry.dataEndpointHostNames ?? []) dataHosts.set(host.toLowerCase(), host.split('.')[1] ?? '');
  if (registry.dataEndpointEnabled === true || hasApprovedPrivateEndpoint) {
    for (const region of new Set([registry.location, ...replicaLocations].map(regionName))) {
      dataHosts.set(`${name}.${region}.data.${suffix.join('.')}`.toLowerCase(), region);
    }
  }
  return [{ host: loginServer, role: 'login server' }, ...[...dataHosts].map(([host, region]) => ({ host, role: `data endpoint (${region})` }))];
}

/**
 * When the login server fails, the agent's VNet does not see the zone at all: link it. When only
 * data endpoints fail, the zone is linked but lacks their records — what happens when a replica is
 * added after the private endpoint was made: each needs an A record for the endpoint's address.
 */
function registryDnsFix(registry: Registry, failing: ResourceHost[]): string {
  const suffix = registry.loginServer?.split('.').slice(1).join('.') ?? 'azurecr.io';
  const zone = `privatelink.${suffix}`;
  if (failing.some((target) => target.role === 'login server')) return privateDnsLinkCommand(zone);
  return failing
    .map((target) =>
      azCommand([
        'network', 'private-dns', 'record-set', 'a', 'add-record', '--resource-group', '<dns-zone-resource-group>', '--zone-name', zone,
        '--record-set-name', target.host.slice(0, -(suffix.length + 1)), '--ipv4-address', '<private-endpoint-ip>',
      ]),
    )
    .join(' && ');
}

/** `az network private-dns link vnet create` for the zone, with placeholders for what only the user knows. */
export function privateDnsLinkCommand(zone: string): string {
  return azCommand([
    'network', 'private-dns', 'link', 'vnet', 'create', '--resource-group', '<dns-zone-resource-group>', '--zone-name', zone,
    '--name', '<agent-vnet>-link', '--virtual-network', '<agent-vnet-id>', '--registration-enabled', 'false',
  ]);
}

export const REGISTRY_DNS_CHECK_ID = 'acr-private-dns';

export function checkRegistryDns(
  ref: ResourceRef,
  registry: Registry,
  replicaLocations: string[],
  hasApprovedPrivateEndpoint: boolean,
  resolver: HostResolver,
): Promise<CheckResult> {
  return checkPrivateDns(
    {
      id: REGISTRY_DNS_CHECK_ID,
      title: 'The login server and every region\'s data endpoint resolve to private addresses from this agent',
      resource: `registry '${ref.name}'`,
      hosts: registryHostNames(registry, replicaLocations, hasApprovedPrivateEndpoint),
      noHosts: 'the registry has no login server',
      fix: (failing) => registryDnsFix(registry, failing),
    },
    resolver,
  );
}
