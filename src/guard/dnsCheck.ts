// From where the task runs: do the registry's login server and data endpoints resolve to private
// addresses? A public answer means this agent would reach the registry over the internet (or not
// at all once public access is closed), however private the registry is
// (https://learn.microsoft.com/azure/container-registry/container-registry-private-link: the login
// server and every regional data endpoint need private DNS records).
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

export const DNS_CHECK_ID = 'acr-private-dns';

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

/**
 * The login server and the home region's data endpoint. ARM lists the data endpoints only when
 * dedicated data endpoints are on; a private endpoint serves `<name>.<region>.data.<suffix>` either
 * way, so that name is derived from the login server when ARM gives none.
 */
export function registryHostNames(registry: Registry): string[] {
  const loginServer = registry.loginServer;
  if (!loginServer) return [];
  if (registry.dataEndpointHostNames?.length) return [loginServer, ...registry.dataEndpointHostNames];
  const [name, ...suffix] = loginServer.split('.');
  const region = registry.location.replace(/\s+/g, '').toLowerCase();
  return [loginServer, `${name}.${region}.data.${suffix.join('.')}`];
}

export async function checkRegistryDns(ref: ResourceRef, registry: Registry, resolver: HostResolver): Promise<CheckResult> {
  const hosts = registryHostNames(registry);
  const answers = await Promise.all(
    hosts.map(async (host) => {
      try {
        const addresses = await resolver.resolve(host);
        const publicOnes = addresses.filter((address) => !isPrivateAddress(address));
        return { host, ok: addresses.length > 0 && publicOnes.length === 0, text: `${host} → ${addresses.join(', ')}${publicOnes.length ? ' (not private)' : ''}` };
      } catch (error) {
        return { host, ok: false, text: `${host} → no answer (${(error as NodeJS.ErrnoException).code ?? String(error)})` };
      }
    }),
  );
  const passed = answers.length > 0 && answers.every((answer) => answer.ok);
  const zone = `privatelink.${registry.loginServer?.split('.').slice(1).join('.') ?? 'azurecr.io'}`;
  return {
    id: DNS_CHECK_ID,
    title: 'The login server and data endpoints resolve to private addresses from this agent',
    severity: 'high',
    resource: `registry '${ref.name}'`,
    status: passed ? 'pass' : 'fail',
    evidence: answers.length ? answers.map((answer) => answer.text).join('; ') : 'the registry has no login server',
    fix: passed
      ? undefined
      : azCommand([
          'network', 'private-dns', 'link', 'vnet', 'create', '--resource-group', '<dns-zone-resource-group>', '--zone-name', zone,
          '--name', '<agent-vnet>-link', '--virtual-network', '<agent-vnet-id>', '--registration-enabled', 'false',
        ]),
  };
}
