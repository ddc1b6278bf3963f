// runPrivateLinkGuard in process against the ARM and Entra stand-ins, with an injected resolver:
// every check passing and failing in every mode, the registry update and its long-running
// operation, the refusal to close a registry nobody could reach afterwards, and the ARM errors.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { AzureIdentity } from '../../src/azure/entra.js';
import { AuthenticationError, InputError, UserError } from '../../src/errors.js';
import type { CheckResult } from '../../src/guard/checks.js';
import type { HostResolver } from '../../src/guard/dnsCheck.js';
import { GUARD_MODES, runPrivateLinkGuard, type GuardMode, type PrivateLinkGuardOptions, type PrivateLinkGuardResult } from '../../src/guard/privateLinkGuard.js';
import { silentLogger } from '../../src/log.js';
import type { TestCa } from '../env/ca.js';
import type { EntraStandIn } from '../env/entra.js';
import { startFaultProxy, type FaultProxy } from '../env/faults.js';
import { startArmEnvironment, type ArmEnvironment, type ArmRole, type ArmStandIn, type ClusterProperties, type RegistryProperties } from '../arm/armServer.js';

let environment: ArmEnvironment;
let ca: TestCa;
let entra: EntraStandIn;
let arm: ArmStandIn;

before(async () => {
  environment = await startArmEnvironment();
  ({ ca, entra, arm } = environment);
});

after(async () => {
  await environment?.stop();
});

/** A service principal with `role` on the subscription. */
function principal(role?: ArmRole): AzureIdentity {
  const clientId = randomUUID();
  const clientSecret = randomBytes(24).toString('base64url');
  const app = entra.addSecretClient(clientId, clientSecret);
  if (role) arm.grant(app.objectId, role);
  return { kind: 'clientSecret', authorityUrl: entra.authorityUrl, tenantId: entra.tenantId, clientId, clientSecret };
}

/** Answers every name with a private endpoint address unless `publicHosts` names it. */
function resolverWith(publicHosts: string[] = []): HostResolver & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    resolve: (host) => {
      asked.push(host);
      return Promise.resolve(publicHosts.includes(host) ? ['20.61.2.3'] : ['10.20.0.5']);
    },
  };
}

interface Scenario {
  registry?: RegistryProperties;
  /** Default: one approved connection. */
  connections?: ('Approved' | 'Pending' | 'Rejected')[];
  cluster?: ClusterProperties;
  publicHosts?: (registryName: string) => string[];
}

/** A fresh registry and cluster in their own resource group, private unless the scenario says otherwise. */
function setUp(scenario: Scenario = {}): { resourceGroup: string; registryName: string; clusterName: string } {
  const resourceGroup = `rg-${randomUUID().slice(0, 8)}`;
  const registryName = `reg${randomBytes(4).toString('hex')}`;
  const clusterName = `aks-${randomBytes(3).toString('hex')}`;
  arm.addRegistry(resourceGroup, registryName, scenario.registry);
  for (const [index, status] of (scenario.connections ?? ['Approved']).entries()) arm.addPrivateEndpointConnection(resourceGroup, registryName, `pe-${index}`, status);
  arm.addCluster(resourceGroup, clusterName, scenario.cluster);
  return { resourceGroup, registryName, clusterName };
}

async function guard(options: Partial<PrivateLinkGuardOptions> & Pick<PrivateLinkGuardOptions, 'resourceGroup' | 'mode'>): Promise<PrivateLinkGuardResult> {
  return runPrivateLinkGuard({
    arm: { url: arm.url, subscriptionId: arm.subscriptionId, audience: arm.audience },
    identity: principal('Contributor'),
    // The test CA is trusted only here (no NODE_EXTRA_CA_CERTS): the SDK clients must send through our transport.
    transport: { caCertificates: [ca.caCertPem] },
    resolver: resolverWith(),
    logger: silentLogger,
    secrets: { register() {} },
    ...options,
  });
}

function check(result: PrivateLinkGuardResult, id: string): CheckResult {
  const found = result.checks.find((candidate) => candidate.id === id);
  assert.ok(found, `no check ${id} in ${result.checks.map((candidate) => candidate.id).join(', ')}`);
  return found;
}

const registryPatches = () => arm.requests.filter((request) => request.method === 'PATCH');

/**
 * Every check, with a scenario that makes it fail while everything else passes. `remediatedBy`:
 * the PATCH properties `remediate` sends for it; absent when remediate must leave it alone.
 */
const CHECKS: { id: string; severity: 'high' | 'medium'; failing: Scenario; remediatedBy?: Record<string, unknown> }[] = [
  {
    id: 'acr-public-network',
    severity: 'high',
    failing: { registry: { publicNetworkAccess: 'Enabled', networkRuleSet: { defaultAction: 'Allow', ipRules: [] } } },
    remediatedBy: { publicNetworkAccess: 'Disabled', networkRuleSet: { defaultAction: 'Deny', ipRules: [] } },
  },
  { id: 'acr-private-endpoint', severity: 'high', failing: { connections: ['Pending'] } },
  { id: 'acr-data-endpoints', severity: 'medium', failing: { registry: { dataEndpointEnabled: false } } },
  { id: 'acr-admin-user', severity: 'medium', failing: { registry: { adminUserEnabled: true } }, remediatedBy: { adminUserEnabled: false } },
  { id: 'acr-anonymous-pull', severity: 'high', failing: { registry: { anonymousPullEnabled: true } }, remediatedBy: { anonymousPullEnabled: false } },
  { id: 'acr-export-policy', severity: 'medium', failing: { registry: { policies: { exportPolicy: { status: 'enabled' } } } } },
  { id: 'acr-private-dns', severity: 'high', failing: { publicHosts: (name) => [`${name}.azurecr.io`] } },
  { id: 'aks-private-cluster', severity: 'high', failing: { cluster: { apiServerAccessProfile: { enablePrivateCluster: false } } } },
  { id: 'aks-local-accounts', severity: 'medium', failing: { cluster: { disableLocalAccounts: false } } },
  { id: 'aks-entra-rbac', severity: 'medium', failing: { cluster: { aadProfile: { managed: true, enableAzureRBAC: false } } } },
  { id: 'aks-network-policy', severity: 'medium', failing: { cluster: { networkProfile: { networkPlugin: 'azure', networkPolicy: 'none' } } } },
];

async function runScenario(scenario: Scenario, mode: GuardMode): Promise<PrivateLinkGuardResult> {
  const { resourceGroup, registryName, clusterName } = setUp(scenario);
  return guard({ resourceGroup, registryName, clusterName, mode, resolver: resolverWith(scenario.publicHosts?.(registryName)) });
}

for (const mode of GUARD_MODES) {
  describe(`mode ${mode}`, () => {
    test('a private registry and cluster: every check passes, nothing is changed', async () => {
      const patchesBefore = registryPatches().length;
      const result = await runScenario({}, mode);
      assert.deepEqual(result.findings, []);
      assert.equal(result.checks.length, CHECKS.length);
      for (const { id } of CHECKS) assert.equal(check(result, id).status, 'pass', id);
      assert.equal(result.failed, false);
      assert.equal(registryPatches().length, patchesBefore);
    });

    for (const { id, severity, failing, remediatedBy } of CHECKS) {
      test(`${id} fails (${severity})`, async () => {
        const patchesBefore = registryPatches().length;
        const result = await runScenario(failing, mode);
        const patches = registryPatches().slice(patchesBefore);
        const others = result.checks.filter((candidate) => candidate.id !== id && candidate.status === 'fail');
        assert.deepEqual(others.map((other) => other.id), [], 'only the check under test fails');
        if (mode === 'remediate' && remediatedBy) {
          assert.equal(check(result, id).status, 'pass', 'fixed by remediation');
          assert.equal(result.remediated, 1);
          assert.deepEqual(result.remediation?.refusals, []);
          assert.equal(patches.length, 1);
          assert.deepEqual(patches[0].body, { properties: remediatedBy });
          assert.equal(result.failed, false);
          return;
        }
        const finding = check(result, id);
        assert.equal(finding.status, 'fail');
        assert.equal(finding.severity, severity);
        assert.match(finding.fix ?? '', /^az /);
        assert.deepEqual(result.findings, [finding]);
        assert.equal(result.highFindings, severity === 'high' ? 1 : 0);
        assert.equal(result.failed, mode !== 'audit' && severity === 'high');
        assert.equal(patches.length, 0, 'nothing is changed');
      });
    }
  });
}

describe('checks that pass in more than one way', () => {
  test('public access Enabled but default action Deny with no IP rules passes; with IP rules it fails', async () => {
    const closed = await runScenario({ registry: { publicNetworkAccess: 'Enabled', networkRuleSet: { defaultAction: 'Deny', ipRules: [] } } }, 'enforce');
    assert.equal(check(closed, 'acr-public-network').status, 'pass');
    const open = await runScenario({ registry: { publicNetworkAccess: 'Enabled', networkRuleSet: { defaultAction: 'Deny', ipRules: [{ action: 'Allow', value: '203.0.113.0/24' }] } } }, 'enforce');
    assert.match(check(open, 'acr-public-network').evidence, /IP rules 203\.0\.113\.0\/24/);
    assert.equal(open.failed, true);
  });

  test('data endpoints do not apply without private endpoint connections', async () => {
    const result = await runScenario({ connections: [], registry: { dataEndpointEnabled: false } }, 'audit');
    assert.equal(check(result, 'acr-data-endpoints').status, 'skip');
    assert.equal(check(result, 'acr-private-endpoint').fix?.startsWith('az network private-endpoint create'), true);
  });

  test('the DNS check asks for the login server and the data endpoint, dedicated or derived', async () => {
    for (const dataEndpointEnabled of [true, false]) {
      const { resourceGroup, registryName } = setUp({ registry: { dataEndpointEnabled } });
      const resolver = resolverWith();
      await guard({ resourceGroup, registryName, mode: 'audit', resolver });
      assert.deepEqual(resolver.asked.sort(), [`${registryName}.azurecr.io`, `${registryName}.westeurope.data.azurecr.io`]);
    }
  });

  test('dnsCheck false leaves the resolver alone', async () => {
    const { resourceGroup, registryName } = setUp();
    const resolver = resolverWith();
    const result = await guard({ resourceGroup, registryName, mode: 'enforce', resolver, dnsCheck: false });
    assert.deepEqual(resolver.asked, []);
    assert.equal(result.checks.some((candidate) => candidate.id === 'acr-private-dns'), false);
  });
});

describe('remediate', () => {
  const openRegistry: Scenario = {
    registry: { publicNetworkAccess: 'Enabled', networkRuleSet: { defaultAction: 'Allow', ipRules: [{ action: 'Allow', value: '198.51.100.7' }] }, adminUserEnabled: true, anonymousPullEnabled: true },
  };

  for (const lroStyle of ['azure-async-operation', 'location'] as const) {
    test(`sends one update, follows the ${lroStyle} operation to its end, and a second run finds nothing`, async () => {
      arm.lroStyle = lroStyle;
      arm.pollsBeforeDone = 2;
      try {
        const { resourceGroup, registryName } = setUp(openRegistry);
        const patchesBefore = registryPatches().length;
        const result = await guard({ resourceGroup, registryName, mode: 'remediate' });
        const patches = registryPatches().slice(patchesBefore);
        assert.equal(patches.length, 1);
        assert.deepEqual(patches[0].body, {
          properties: {
            publicNetworkAccess: 'Disabled',
            networkRuleSet: { defaultAction: 'Deny', ipRules: [{ action: 'Allow', value: '198.51.100.7' }] },
            adminUserEnabled: false,
            anonymousPullEnabled: false,
          },
        });
        assert.equal(result.remediated, 3);
        assert.deepEqual(result.findings, []);
        assert.equal(result.remediation?.changes.length, 4);
        const polls = arm.requests.filter((request) => /operation(Statuses|Results)/.test(request.path));
        assert.ok(polls.length >= 3, `polled ${polls.length} times`);
        const stored = arm.registry(resourceGroup, registryName)!.properties as Record<string, unknown>;
        assert.equal(stored.publicNetworkAccess, 'Disabled');
        assert.equal(stored.provisioningState, 'Succeeded');

        const second = await guard({ resourceGroup, registryName, mode: 'remediate' });
        assert.deepEqual(second.findings, []);
        assert.deepEqual(second.remediation, { changes: [], refusals: [] });
        assert.equal(registryPatches().length, patchesBefore + 1);
      } finally {
        arm.lroStyle = 'azure-async-operation';
        arm.pollsBeforeDone = 1;
      }
    });
  }

  test('without an approved private endpoint it keeps public access open, says why, and still fixes the rest', async () => {
    const { resourceGroup, registryName } = setUp({ ...openRegistry, connections: ['Pending', 'Rejected'] });
    const patchesBefore = registryPatches().length;
    const result = await guard({ resourceGroup, registryName, mode: 'remediate' });
    const patches = registryPatches().slice(patchesBefore);
    assert.deepEqual(patches.map((patch) => patch.body), [{ properties: { adminUserEnabled: false, anonymousPullEnabled: false } }]);
    assert.equal(result.remediation?.refusals.length, 1);
    assert.match(result.remediation.refusals[0], /no approved private endpoint connection.*lock every client out/);
    assert.deepEqual(result.findings.map((finding) => finding.id).sort(), ['acr-private-endpoint', 'acr-public-network']);
    assert.match(check(result, 'acr-private-endpoint').fix!, /az acr private-endpoint-connection approve .* --name pe-0$/);
    assert.equal(result.failed, true);
    assert.equal((arm.registry(resourceGroup, registryName)!.properties as Record<string, unknown>).publicNetworkAccess, 'Enabled');
  });

  test('never changes a cluster', async () => {
    const { resourceGroup, clusterName } = setUp({ cluster: { disableLocalAccounts: false, apiServerAccessProfile: { enablePrivateCluster: false } } });
    const before = arm.requests.length;
    const result = await guard({ resourceGroup, clusterName, mode: 'remediate' });
    assert.deepEqual(arm.requests.slice(before).map((request) => request.method), ['GET']);
    assert.equal(result.failed, true);
    assert.equal(result.remediation, undefined);
  });

  test('a reader cannot update: one line naming the permission', async () => {
    const { resourceGroup, registryName } = setUp(openRegistry);
    await assert.rejects(guard({ resourceGroup, registryName, mode: 'remediate', identity: principal('Reader') }), (error: Error) => {
      assert.ok(error instanceof AuthenticationError);
      assert.match(error.message, /may not update registry .*AuthorizationFailed.*Contributor/);
      return true;
    });
  });
});

describe('errors', () => {
  test('a registry that does not exist', async () => {
    const { resourceGroup } = setUp();
    await assert.rejects(guard({ resourceGroup, registryName: 'nosuchregistry', mode: 'audit' }), (error: Error) => {
      assert.ok(error instanceof UserError);
      assert.match(error.message, /^Cannot read registry 'nosuchregistry' in resource group '.*': it does not exist \(ResourceNotFound: /);
      assert.ok(!error.message.includes('\n'));
      return true;
    });
  });

  test('a cluster in a resource group that does not exist', async () => {
    await assert.rejects(guard({ resourceGroup: 'rg-missing', clusterName: 'aks', mode: 'audit' }), /^UserError: Cannot read cluster 'aks' in resource group 'rg-missing': it does not exist \(ResourceGroupNotFound/);
  });

  test('a connection without read rights (403)', async () => {
    const { resourceGroup, clusterName } = setUp();
    await assert.rejects(guard({ resourceGroup, clusterName, mode: 'audit', identity: principal() }), (error: Error) => {
      assert.ok(error instanceof AuthenticationError);
      assert.match(error.message, /^The service connection may not read cluster '.*' \(AuthorizationFailed: .*\)\. Grant its identity the Reader role/);
      return true;
    });
  });

  test('neither a registry nor a cluster', async () => {
    await assert.rejects(guard({ resourceGroup: 'rg', mode: 'audit' }), (error: Error) => error instanceof InputError && /neither registryName nor clusterName/.test(error.message));
  });

  test('tokens are asked for the connection audience and ARM checks them', async () => {
    const { resourceGroup, registryName } = setUp();
    const before = entra.tokenRequests.length;
    await guard({ resourceGroup, registryName, mode: 'audit' });
    assert.deepEqual(entra.tokenRequests.slice(before).map((request) => request.scope), [`${arm.audience}/.default`]);
    const wrongAudience = guard({ resourceGroup, registryName, mode: 'audit', arm: { url: arm.url, subscriptionId: arm.subscriptionId, audience: 'https://vault.azure.net/' } });
    await assert.rejects(wrongAudience, /refused the connection's token \(InvalidAuthenticationTokenAudience/);
  });
});

describe('ARM requests are retried by one layer, the transport', () => {
  let proxy: FaultProxy;
  before(async () => {
    proxy = await startFaultProxy({ ca, target: arm.url.replace(/\/$/, '') });
  });
  after(async () => {
    await proxy?.stop();
  });

  /** The guard with ARM behind the fault proxy, and short backoffs. */
  const viaProxy = (options: Pick<PrivateLinkGuardOptions, 'resourceGroup' | 'registryName' | 'mode'>) =>
    guard({ ...options, arm: { url: `${proxy.url}/`, subscriptionId: arm.subscriptionId, audience: arm.audience }, transport: { caCertificates: [ca.caCertPem], retry: { baseDelayMs: 20 } } });
  const registryReads = (registryName: string) => proxy.requests.filter((request) => request.method === 'GET' && request.path.includes(`/registries/${registryName}?`));

  test('a reset connection and a 503 are tried again', async () => {
    const { resourceGroup, registryName } = setUp();
    const path = new RegExp(`/registries/${registryName}\\?`);
    const faults = [proxy.inject({ method: 'GET', pathPattern: path, kind: 'reset' }), proxy.inject({ method: 'GET', pathPattern: path, kind: 'respond', status: 503 })];
    const result = await viaProxy({ resourceGroup, registryName, mode: 'audit' });
    assert.ok(faults.every((fault) => fault.fired));
    assert.equal(check(result, 'acr-admin-user').status, 'pass');
    assert.equal(registryReads(registryName).length, 3);
  });

  test('an endpoint that keeps failing is given up after the transport budget, with no SDK retries on top', async () => {
    const { resourceGroup, registryName } = setUp();
    const failing = proxy.inject({ method: 'GET', pathPattern: new RegExp(`/registries/${registryName}\\?`), kind: 'respond', status: 503, times: Infinity });
    try {
      await assert.rejects(viaProxy({ resourceGroup, registryName, mode: 'audit' }), (error: Error) => {
        assert.match(error.message, new RegExp(`^Gave up on Azure Resource Manager 127\\.0\\.0\\.1:\\d+ \\(GET /subscriptions/.*/registries/${registryName}\\) after 5 attempts in [\\d.]+ s: .*HTTP 503`));
        return true;
      });
      assert.equal(registryReads(registryName).length, 5);
    } finally {
      failing.disarm();
    }
  });
});
