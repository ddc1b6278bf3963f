// runPrivateLinkGuard in process against the ARM and Entra stand-ins, with an injected resolver:
// every check passing and failing in every mode, the registry update and its long-running
// operation, the storage account update, the refusal to close a registry or an account nobody
// could reach afterwards, the data endpoints of every replica region, and the ARM errors.
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
import {
  startArmEnvironment, type ArmEnvironment, type ArmRole, type ArmStandIn, type ClusterProperties, type ConnectionStatus, type RegistryProperties,
  type StorageAccountProperties,
} from '../arm/armServer.js';

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
  return resolverAnswering((host) => (publicHosts.includes(host) ? ['20.61.2.3'] : ['10.20.0.5']));
}

function resolverAnswering(answer: (host: string) => string[]): HostResolver & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    resolve: (host) => {
      asked.push(host);
      return Promise.resolve(answer(host));
    },
  };
}

interface StorageEndpoint {
  groupId: string;
  status: ConnectionStatus;
  readable?: boolean;
}

interface Scenario {
  registry?: RegistryProperties;
  /** Default: one approved connection. */
  connections?: ConnectionStatus[];
  /** Replica regions besides the home region (westeurope). */
  replicas?: string[];
  cluster?: ClusterProperties;
  storage?: StorageAccountProperties;
  /** Default: one approved private endpoint for blob. */
  storageEndpoints?: StorageEndpoint[];
  publicHosts?: (names: Names) => string[];
}

interface Names {
  resourceGroup: string;
  registryName: string;
  clusterName: string;
  storageAccountName: string;
}

/** A fresh registry, cluster and Terraform state account in their own resource group, private unless the scenario says otherwise. */
function setUp(scenario: Scenario = {}): Names {
  const resourceGroup = `rg-${randomUUID().slice(0, 8)}`;
  const registryName = `reg${randomBytes(4).toString('hex')}`;
  const clusterName = `aks-${randomBytes(3).toString('hex')}`;
  const storageAccountName = `tfstate${randomBytes(4).toString('hex')}`;
  arm.addRegistry(resourceGroup, registryName, scenario.registry);
  for (const [index, status] of (scenario.connections ?? ['Approved']).entries()) arm.addPrivateEndpointConnection(resourceGroup, registryName, `pe-${index}`, status);
  for (const region of scenario.replicas ?? []) arm.addReplication(resourceGroup, registryName, region);
  arm.addCluster(resourceGroup, clusterName, scenario.cluster);
  arm.addStorageAccount(resourceGroup, storageAccountName, scenario.storage);
  for (const [index, { groupId, status, readable }] of (scenario.storageEndpoints ?? [{ groupId: 'blob', status: 'Approved' }]).entries()) {
    arm.addStoragePrivateEndpoint(resourceGroup, storageAccountName, `pe-${storageAccountName}-${index}`, groupId, status, readable);
  }
  return { resourceGroup, registryName, clusterName, storageAccountName };
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

const registryPatches = () => arm.requests.filter((request) => request.method === 'PATCH' && request.path.includes('/Microsoft.ContainerRegistry/'));
const storagePatches = () => arm.requests.filter((request) => request.method === 'PATCH' && request.path.includes('/Microsoft.Storage/'));
const allPatches = () => arm.requests.filter((request) => request.method === 'PATCH');

/** A public Terraform state account, every setting wrong. */
const PUBLIC_ACCOUNT: StorageAccountProperties = {
  publicNetworkAccess: 'Enabled',
  networkAcls: { bypass: 'AzureServices', defaultAction: 'Allow', ipRules: [{ value: '203.0.113.7', action: 'Allow' }], virtualNetworkRules: [] },
  allowBlobPublicAccess: true,
  allowSharedKeyAccess: true,
  minimumTlsVersion: 'TLS1_0',
};

/**
 * Every check, with a scenario that makes it fail while everything else passes. `remediatedBy`:
 * the PATCH `remediate` sends for it (to the registry or the storage account); absent when
 * remediate must leave it alone.
 */
const CHECKS: { id: string; severity: 'high' | 'medium'; failing: Scenario; remediatedBy?: { resource: 'registry' | 'storage'; properties: Record<string, unknown> } }[] = [
  {
    id: 'acr-public-network',
    severity: 'high',
    failing: { registry: { publicNetworkAccess: 'Enabled', networkRuleSet: { defaultAction: 'Allow', ipRules: [] } } },
    remediatedBy: { resource: 'registry', properties: { publicNetworkAccess: 'Disabled', networkRuleSet: { defaultAction: 'Deny', ipRules: [] } } },
  },
  { id: 'acr-private-endpoint', severity: 'high', failing: { connections: ['Pending'] } },
  { id: 'acr-data-endpoints', severity: 'medium', failing: { registry: { dataEndpointEnabled: false } } },
  { id: 'acr-admin-user', severity: 'medium', failing: { registry: { adminUserEnabled: true } }, remediatedBy: { resource: 'registry', properties: { adminUserEnabled: false } } },
  { id: 'acr-anonymous-pull', severity: 'high', failing: { registry: { anonymousPullEnabled: true } }, remediatedBy: { resource: 'registry', properties: { anonymousPullEnabled: false } } },
  { id: 'acr-export-policy', severity: 'medium', failing: { registry: { policies: { exportPolicy: { status: 'enabled' } } } } },
  {
    id: 'acr-trusted-services',
    severity: 'medium',
    failing: { registry: { networkRuleBypassOptions: 'None' } },
    remediatedBy: { resource: 'registry', properties: { networkRuleBypassOptions: 'AzureServices' } },
  },
  { id: 'acr-private-dns', severity: 'high', failing: { publicHosts: ({ registryName }) => [`${registryName}.azurecr.io`] } },
  { id: 'aks-private-cluster', severity: 'high', failing: { cluster: { apiServerAccessProfile: { enablePrivateCluster: false } } } },
  { id: 'aks-local-accounts', severity: 'medium', failing: { cluster: { disableLocalAccounts: false } } },
  { id: 'aks-entra-rbac', severity: 'medium', failing: { cluster: { aadProfile: { managed: true, enableAzureRBAC: false } } } },
  { id: 'aks-network-policy', severity: 'medium', failing: { cluster: { networkProfile: { networkPlugin: 'azure', networkPolicy: 'none' } } } },
  { id: 'storage-public-network', severity: 'high', failing: { storage: { publicNetworkAccess: 'Enabled' } }, remediatedBy: { resource: 'storage', properties: { publicNetworkAccess: 'Disabled' } } },
  {
    id: 'storage-default-action',
    severity: 'high',
    failing: { storage: { networkAcls: { bypass: 'AzureServices', defaultAction: 'Allow', ipRules: [{ value: '203.0.113.7', action: 'Allow' }], virtualNetworkRules: [] } } },
    // The whole rule set goes back, its IP rules and its bypass kept.
    remediatedBy: { resource: 'storage', properties: { networkAcls: { bypass: 'AzureServices', defaultAction: 'Deny', ipRules: [{ value: '203.0.113.7', action: 'Allow' }], virtualNetworkRules: [] } } },
  },
  { id: 'storage-private-endpoint', severity: 'high', failing: { storageEndpoints: [{ groupId: 'file', status: 'Approved' }, { groupId: 'blob', status: 'Pending' }] } },
  // Alone in an update, this property is what @azure/arm-storage 20.0.0 would drop from the request.
  { id: 'storage-blob-public-access', severity: 'high', failing: { storage: { allowBlobPublicAccess: true } }, remediatedBy: { resource: 'storage', properties: { allowBlobPublicAccess: false } } },
  { id: 'storage-shared-key', severity: 'medium', failing: { storage: { allowSharedKeyAccess: undefined } } },
  { id: 'storage-tls-version', severity: 'medium', failing: { storage: { minimumTlsVersion: 'TLS1_0' } }, remediatedBy: { resource: 'storage', properties: { minimumTlsVersion: 'TLS1_2' } } },
  { id: 'storage-private-dns', severity: 'high', failing: { publicHosts: ({ storageAccountName }) => [`${storageAccountName}.blob.core.windows.net`] } },
];

async function runScenario(scenario: Scenario, mode: GuardMode, resolver?: HostResolver): Promise<PrivateLinkGuardResult> {
  const names = setUp(scenario);
  return guard({ ...names, mode, resolver: resolver ?? resolverWith(scenario.publicHosts?.(names)) });
}

for (const mode of GUARD_MODES) {
  describe(`mode ${mode}`, () => {
    test('a private registry, cluster and storage account: every check passes, nothing is changed', async () => {
      const patchesBefore = allPatches().length;
      const result = await runScenario({}, mode);
      assert.deepEqual(result.findings, []);
      assert.equal(result.checks.length, CHECKS.length);
      for (const { id } of CHECKS) assert.equal(check(result, id).status, 'pass', id);
      assert.equal(result.failed, false);
      assert.equal(allPatches().length, patchesBefore);
    });

    for (const { id, severity, failing, remediatedBy } of CHECKS) {
      test(`${id} fails (${severity})`, async () => {
        const patchesBefore = allPatches().length;
        const result = await runScenario(failing, mode);
        const patches = allPatches().slice(patchesBefore);
        const others = result.checks.filter((candidate) => candidate.id !== id && candidate.status === 'fail');
        assert.deepEqual(others.map((other) => other.id), [], 'only the check under test fails');
        if (mode === 'remediate' && remediatedBy) {
          assert.equal(check(result, id).status, 'pass', 'fixed by remediation');
          assert.equal(result.remediated, 1);
          assert.deepEqual(result.remediation?.refusals, []);
          assert.equal(patches.length, 1);
          assert.match(patches[0].path, remediatedBy.resource === 'registry' ? /\/Microsoft\.ContainerRegistry\/registries\// : /\/Microsoft\.Storage\/storageAccounts\//);
          assert.deepEqual(patches[0].body, { properties: remediatedBy.properties });
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

  test('without dedicated data endpoints or an approved private endpoint only the login server is asked for', async () => {
    const { resourceGroup, registryName } = setUp({ registry: { dataEndpointEnabled: false }, connections: ['Pending'] });
    const resolver = resolverWith();
    await guard({ resourceGroup, registryName, mode: 'audit', resolver });
    assert.deepEqual(resolver.asked, [`${registryName}.azurecr.io`]);
  });

  for (const dataEndpointEnabled of [true, false]) {
    test(`a geo-replicated registry (dedicated data endpoints ${dataEndpointEnabled ? 'on' : 'off'}): every region's data endpoint is resolved, one public region is one finding naming it`, async () => {
      const { resourceGroup, registryName } = setUp({ registry: { dataEndpointEnabled }, replicas: ['northeurope', 'eastus2'] });
      const eastus2 = `${registryName}.eastus2.data.azurecr.io`;
      const resolver = resolverAnswering((host) => (host === eastus2 ? ['20.49.104.9'] : ['10.20.0.5']));
      const result = await guard({ resourceGroup, registryName, mode: 'enforce', resolver });
      assert.deepEqual(resolver.asked.sort(), [
        `${registryName}.azurecr.io`, `${registryName}.eastus2.data.azurecr.io`, `${registryName}.northeurope.data.azurecr.io`, `${registryName}.westeurope.data.azurecr.io`,
      ]);
      const dnsFindings = result.findings.filter((candidate) => candidate.id === 'acr-private-dns');
      assert.equal(dnsFindings.length, 1);
      assert.equal(result.highFindings, 1);
      const finding = dnsFindings[0];
      assert.match(finding.evidence, new RegExp(`data endpoint \\(eastus2\\) ${eastus2.replace(/\./g, '\\.')} → 20\\.49\\.104\\.9 \\(not private\\)`));
      assert.match(finding.evidence, /data endpoint \(northeurope\) .* → 10\.20\.0\.5(;|$)/);
      // The zone is linked (the login server resolves); the replica's record is what is missing.
      assert.equal(
        finding.fix,
        `az network private-dns record-set a add-record --resource-group <dns-zone-resource-group> --zone-name privatelink.azurecr.io --record-set-name ${registryName}.eastus2.data --ipv4-address <private-endpoint-ip>`,
      );
      assert.equal(result.failed, true);
    });
  }

  test('dnsCheck false leaves the resolver alone', async () => {
    const { resourceGroup, registryName, storageAccountName } = setUp();
    const resolver = resolverWith();
    const result = await guard({ resourceGroup, registryName, storageAccountName, mode: 'enforce', resolver, dnsCheck: false });
    assert.deepEqual(resolver.asked, []);
    assert.equal(result.checks.some((candidate) => candidate.id.endsWith('-private-dns')), false);
  });

  test('trusted services do not apply while the registry is public', async () => {
    const result = await runScenario({ registry: { publicNetworkAccess: 'Enabled', networkRuleSet: { defaultAction: 'Allow', ipRules: [] }, networkRuleBypassOptions: 'None' } }, 'audit');
    assert.equal(check(result, 'acr-trusted-services').status, 'skip');
  });

  test('the storage account\'s blob endpoint is resolved with the connection\'s cloud suffix', async () => {
    const { resourceGroup, storageAccountName } = setUp();
    const resolver = resolverWith([`${storageAccountName}.blob.core.chinacloudapi.cn`]);
    const result = await guard({ resourceGroup, storageAccountName, storageEndpointSuffix: 'core.chinacloudapi.cn', mode: 'enforce', resolver });
    assert.deepEqual(resolver.asked, [`${storageAccountName}.blob.core.chinacloudapi.cn`]);
    const finding = check(result, 'storage-private-dns');
    assert.equal(finding.status, 'fail');
    assert.match(finding.fix!, / --zone-name privatelink\.blob\.core\.chinacloudapi\.cn /);
  });

  test('the storage account may live in a resource group of its own', async () => {
    const registry = setUp();
    const elsewhere = setUp();
    const result = await guard({ resourceGroup: registry.resourceGroup, registryName: registry.registryName, storageResourceGroup: elsewhere.resourceGroup, storageAccountName: elsewhere.storageAccountName, mode: 'enforce' });
    assert.deepEqual(result.findings, []);
    assert.ok(result.checks.some((candidate) => candidate.resource === `storage account '${elsewhere.storageAccountName}'`));
  });

  test('a private endpoint the connection cannot read leaves the sub-resource unknown and asks for read access', async () => {
    const { resourceGroup, storageAccountName } = setUp({ storageEndpoints: [{ groupId: 'blob', status: 'Approved', readable: false }] });
    const result = await guard({ resourceGroup, storageAccountName, mode: 'enforce' });
    const finding = check(result, 'storage-private-endpoint');
    assert.equal(finding.status, 'fail');
    assert.match(finding.evidence, /Approved, sub-resource unknown: the private endpoint could not be read \(ResourceNotFound\)/);
    assert.match(finding.fix!, new RegExp(`^az role assignment create --assignee <service-connection-principal-id> --role Reader --scope /subscriptions/.*/providers/Microsoft\\.Network/privateEndpoints/pe-${storageAccountName}-0$`));
  });
});

describe('the Terraform state account', () => {
  const STORAGE_FIXES: [string, string][] = [
    ['storage-public-network', '--public-network-access Disabled'],
    ['storage-default-action', '--default-action Deny'],
    ['storage-blob-public-access', '--allow-blob-public-access false'],
    ['storage-shared-key', '--allow-shared-key-access false'],
    ['storage-tls-version', '--min-tls-version TLS1_2'],
  ];

  test('a public account fails enforce, naming each setting and its az storage account update fix', async () => {
    const { resourceGroup, storageAccountName } = setUp({ storage: PUBLIC_ACCOUNT });
    const result = await guard({ resourceGroup, storageAccountName, mode: 'enforce' });
    assert.equal(result.failed, true);
    assert.deepEqual(result.findings.map((finding) => finding.id).sort(), STORAGE_FIXES.map(([id]) => id).sort());
    for (const [id, switches] of STORAGE_FIXES) {
      assert.equal(check(result, id).fix, `az storage account update --name ${storageAccountName} --resource-group ${resourceGroup} ${switches}`, id);
    }
    assert.match(check(result, 'storage-public-network').evidence, /^publicNetworkAccess=Enabled$/);
    assert.match(check(result, 'storage-default-action').evidence, /^networkAcls\.defaultAction=Allow, IP rules 203\.0\.113\.7, 0 virtual network rule\(s\), bypass=AzureServices$/);
    assert.equal(check(result, 'storage-blob-public-access').evidence, 'allowBlobPublicAccess=true');
    assert.equal(check(result, 'storage-shared-key').evidence, 'allowSharedKeyAccess=true');
    assert.equal(check(result, 'storage-tls-version').evidence, 'minimumTlsVersion=TLS1_0');
    assert.equal(result.highFindings, 3);
  });

  test('audit only warns about the same account', async () => {
    const { resourceGroup, storageAccountName } = setUp({ storage: PUBLIC_ACCOUNT });
    const warnings: string[] = [];
    const patchesBefore = allPatches().length;
    const result = await guard({ resourceGroup, storageAccountName, mode: 'audit', logger: { ...silentLogger, warn: (line) => warnings.push(line) } });
    assert.equal(result.failed, false);
    assert.equal(result.findings.length, STORAGE_FIXES.length);
    for (const [id, switches] of STORAGE_FIXES) assert.ok(warnings.some((line) => line.includes(` ${id} `) && line.endsWith(switches)), `${id}: ${warnings.join('\n')}`);
    assert.equal(allPatches().length, patchesBefore);
  });

  test('settings ARM leaves unset count as the open defaults', async () => {
    const unset = { publicNetworkAccess: undefined, networkAcls: undefined, allowBlobPublicAccess: undefined, allowSharedKeyAccess: undefined, minimumTlsVersion: undefined };
    const result = await runScenario({ storage: unset }, 'audit');
    assert.equal(check(result, 'storage-public-network').evidence, 'publicNetworkAccess=unset (Enabled)');
    assert.match(check(result, 'storage-default-action').evidence, /^networkAcls\.defaultAction=unset \(Allow\)/);
    assert.equal(check(result, 'storage-blob-public-access').evidence, 'allowBlobPublicAccess=unset');
    assert.equal(check(result, 'storage-shared-key').evidence, 'allowSharedKeyAccess=unset (allowed)');
    assert.equal(check(result, 'storage-tls-version').evidence, 'minimumTlsVersion=unset (TLS1_0)');
    assert.equal(result.findings.length, 5);
  });

  test('remediate with an approved blob private endpoint closes public access in one update and leaves Shared Key alone, saying why', async () => {
    const { resourceGroup, storageAccountName } = setUp({ storage: PUBLIC_ACCOUNT });
    const patchesBefore = storagePatches().length;
    const result = await guard({ resourceGroup, storageAccountName, mode: 'remediate' });
    const patches = storagePatches().slice(patchesBefore);
    assert.equal(patches.length, 1);
    assert.deepEqual(patches[0].body, {
      properties: {
        publicNetworkAccess: 'Disabled',
        networkAcls: { bypass: 'AzureServices', defaultAction: 'Deny', ipRules: [{ value: '203.0.113.7', action: 'Allow' }], virtualNetworkRules: [] },
        allowBlobPublicAccess: false,
        minimumTlsVersion: 'TLS1_2',
      },
    });
    assert.equal(result.remediated, 4);
    assert.deepEqual(result.findings.map((finding) => finding.id), ['storage-shared-key']);
    assert.equal(result.remediation?.refusals.length, 1);
    assert.match(result.remediation.refusals[0], /^storage-shared-key: Shared Key stays allowed because Terraform's azurerm backend reads state with the account key unless .*use_azuread_auth/);
    assert.ok(result.remediation.changes.includes(`storage account '${storageAccountName}': publicNetworkAccess: Enabled → Disabled`));
    assert.equal(result.failed, false, 'what is left is medium');
    const stored = arm.storageAccount(resourceGroup, storageAccountName)!.properties as Record<string, unknown>;
    assert.equal(stored.publicNetworkAccess, 'Disabled');
    assert.deepEqual(stored.networkAcls, { bypass: 'AzureServices', defaultAction: 'Deny', ipRules: [{ value: '203.0.113.7', action: 'Allow' }], virtualNetworkRules: [] });
    assert.equal(stored.allowSharedKeyAccess, true);

    const second = await guard({ resourceGroup, storageAccountName, mode: 'remediate' });
    assert.equal(second.remediated, 0);
    assert.equal(storagePatches().length, patchesBefore + 1);
  });

  const withoutBlobEndpoint: [string, StorageEndpoint[]][] = [
    ['no private endpoint', []],
    ['only a file private endpoint', [{ groupId: 'file', status: 'Approved' }]],
    ['a blob private endpoint still pending', [{ groupId: 'blob', status: 'Pending' }]],
  ];
  for (const [name, storageEndpoints] of withoutBlobEndpoint) {
    test(`remediate with ${name} refuses in one line and changes nothing`, async () => {
      const { resourceGroup, storageAccountName } = setUp({ storage: { publicNetworkAccess: 'Enabled', networkAcls: { bypass: 'AzureServices', defaultAction: 'Allow' } }, storageEndpoints });
      const patchesBefore = allPatches().length;
      const result = await guard({ resourceGroup, storageAccountName, mode: 'remediate' });
      assert.equal(allPatches().length, patchesBefore, 'nothing is changed');
      assert.equal(result.remediation?.refusals.length, 1);
      assert.match(result.remediation.refusals[0], /^storage-public-network, storage-default-action: public access stays open because the storage account has no approved private endpoint for the blob service;/);
      assert.ok(!result.remediation.refusals[0].includes('\n'));
      assert.deepEqual(result.remediation.changes, []);
      assert.deepEqual(result.findings.map((finding) => finding.id).sort(), ['storage-default-action', 'storage-private-endpoint', 'storage-public-network']);
      assert.equal(result.failed, true);
      assert.equal((arm.storageAccount(resourceGroup, storageAccountName)!.properties as Record<string, unknown>).publicNetworkAccess, 'Enabled');
    });
  }

  test('the private endpoint fix approves a pending blob connection', async () => {
    const { resourceGroup, storageAccountName } = setUp({ storageEndpoints: [{ groupId: 'blob', status: 'Pending' }] });
    const result = await guard({ resourceGroup, storageAccountName, mode: 'audit' });
    const finding = check(result, 'storage-private-endpoint');
    assert.match(finding.evidence, /^no approved blob connection \(pe-.*: Pending, blob\)$/);
    assert.match(finding.fix!, new RegExp(`^az storage account private-endpoint-connection approve --account-name ${storageAccountName} --resource-group ${resourceGroup} --name pe-${storageAccountName}-0\\.[0-9a-f-]{36}$`));
  });

  test('a storage account that does not exist, and one the connection may not update', async () => {
    const { resourceGroup, storageAccountName } = setUp({ storage: { minimumTlsVersion: 'TLS1_0' } });
    await assert.rejects(guard({ resourceGroup, storageAccountName: 'nosuchaccount', mode: 'audit' }), /^UserError: Cannot read storage account 'nosuchaccount' in resource group '.*': it does not exist \(ResourceNotFound: /);
    await assert.rejects(guard({ resourceGroup, storageAccountName, mode: 'remediate', identity: principal('Reader') }), (error: Error) => {
      assert.ok(error instanceof AuthenticationError);
      assert.match(error.message, /may not update storage account .*AuthorizationFailed.*Storage Account Contributor/);
      return true;
    });
  });
});

describe('remediate the registry', () => {
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

  test('closing public access turns trusted services on where they were off, in the same update', async () => {
    const { resourceGroup, registryName } = setUp({ registry: { ...openRegistry.registry, networkRuleBypassOptions: 'None' } });
    const patchesBefore = registryPatches().length;
    const result = await guard({ resourceGroup, registryName, mode: 'remediate' });
    const patches = registryPatches().slice(patchesBefore);
    assert.equal(patches.length, 1);
    assert.equal((patches[0].body!.properties as Record<string, unknown>).networkRuleBypassOptions, 'AzureServices');
    assert.equal(check(result, 'acr-trusted-services').status, 'pass');
    assert.ok(result.remediation?.changes.includes(`registry '${registryName}': networkRuleBypassOptions: None → AzureServices`));
    assert.equal((arm.registry(resourceGroup, registryName)!.properties as Record<string, unknown>).networkRuleBypassOptions, 'AzureServices');
  });

  test('never turns trusted services off: an update of a registry that allows them leaves the setting out', async () => {
    const { resourceGroup, registryName } = setUp(openRegistry);
    const patchesBefore = registryPatches().length;
    await guard({ resourceGroup, registryName, mode: 'remediate' });
    const [patch] = registryPatches().slice(patchesBefore);
    assert.ok(!('networkRuleBypassOptions' in (patch.body!.properties as Record<string, unknown>)));
    assert.equal((arm.registry(resourceGroup, registryName)!.properties as Record<string, unknown>).networkRuleBypassOptions, 'AzureServices');
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

  test('no resource to check', async () => {
    await assert.rejects(guard({ resourceGroup: 'rg', mode: 'audit' }), (error: Error) => error instanceof InputError && /none of registryName, clusterName and storageAccountName is set/.test(error.message));
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
