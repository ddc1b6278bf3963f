// PrivateLinkGuard@1 as the agent runs it: the bundled task against the ARM and Entra stand-ins,
// with the connection's ARM URL, subscription, audience and cloud. Checks the task's contract:
// result per mode, warnings with the fixes, output variables, the attached report, the registry
// and storage account updates, and one-line errors.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { TestCa } from '../env/ca.js';
import type { EntraStandIn } from '../env/entra.js';
import {
  startArmEnvironment, type ArmEnvironment, type ArmRole, type ArmStandIn, type ClusterProperties, type RegistryProperties, type StorageAccountProperties,
} from '../arm/armServer.js';
import { assertFailedWith } from '../support/registryIdentities.js';
import { runTask, type ServiceConnection, type TaskRun } from '../support/taskRunner.js';

const TASK = 'PrivateLinkGuard';
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

const clientSecrets: string[] = [];

/** An AzureRM connection of a service principal with `role` on the stand-in's subscription. */
function connection(role: ArmRole | undefined, data: Record<string, string> = { activeDirectoryServiceEndpointResourceId: arm.audience }): ServiceConnection {
  const clientId = randomUUID();
  const clientSecret = randomBytes(24).toString('base64url');
  clientSecrets.push(clientSecret);
  const app = entra.addSecretClient(clientId, clientSecret);
  if (role) arm.grant(app.objectId, role);
  return {
    scheme: 'ServicePrincipal',
    url: arm.url,
    parameters: { serviceprincipalid: clientId, serviceprincipalkey: clientSecret, tenantid: entra.tenantId, authenticationType: 'spnKey' },
    data: { environmentAuthorityUrl: entra.authorityUrl, subscriptionId: arm.subscriptionId, ...data },
  };
}

/** A registry (with an approved private endpoint unless told otherwise) and a cluster in a fresh resource group. */
function setUp(registry?: RegistryProperties, cluster?: ClusterProperties, approved = true) {
  const resourceGroup = `rg-${randomUUID().slice(0, 8)}`;
  const registryName = `reg${randomBytes(4).toString('hex')}`;
  const clusterName = `aks-${randomBytes(3).toString('hex')}`;
  arm.addRegistry(resourceGroup, registryName, registry);
  arm.addPrivateEndpointConnection(resourceGroup, registryName, 'pe-agents', approved ? 'Approved' : 'Pending');
  arm.addCluster(resourceGroup, clusterName, cluster);
  return { resourceGroup, registryName, clusterName };
}

async function guard(inputs: Record<string, string>, armConnection = connection('Contributor')): Promise<TaskRun> {
  const run = await runTask(TASK, {
    inputs: { azureSubscription: 'arm', dnsCheck: 'false', ...inputs },
    connections: { arm: armConnection },
    env: { NODE_EXTRA_CA_CERTS: ca.caCertPath },
  });
  for (const secret of [...clientSecrets, ...entra.issuedTokens.map((issued) => issued.token)]) {
    assert.ok(!run.maskedOutput.includes(secret), 'a secret or token was printed');
  }
  return run;
}

/** The guard also succeeds with issues, which the registry tasks' assertSucceeded does not allow. */
function assertResult(run: TaskRun, result: 'Succeeded' | 'SucceededWithIssues'): void {
  assert.equal(run.result, result, `${run.errors.join(' | ')}\n${run.maskedOutput.slice(-3000)}`);
  assert.equal(run.exitCode, 0);
}

const OPEN_REGISTRY: RegistryProperties = { publicNetworkAccess: 'Enabled', networkRuleSet: { defaultAction: 'Allow', ipRules: [] }, adminUserEnabled: true };
const PUBLIC_CLUSTER: ClusterProperties = { apiServerAccessProfile: { enablePrivateCluster: false }, disableLocalAccounts: false };
const patches = () => arm.requests.filter((request) => request.method === 'PATCH');

describe('modes', () => {
  test('audit: every finding is a warning with its az fix, counts as outputs, a report; the run succeeds with issues', async () => {
    const { resourceGroup, registryName, clusterName } = setUp(OPEN_REGISTRY, PUBLIC_CLUSTER);
    const patchesBefore = patches().length;
    const run = await guard({ resourceGroup, registryName, clusterName, mode: 'audit' });
    assertResult(run, 'SucceededWithIssues');
    assert.deepEqual(run.outputs, { findings: '4', highFindings: '2', remediated: '0' });
    const expected = [
      ['acr-public-network', `az acr update --name ${registryName} --resource-group ${resourceGroup} --public-network-enabled false --default-action Deny`],
      ['acr-admin-user', `az acr update --name ${registryName} --resource-group ${resourceGroup} --admin-enabled false`],
      ['aks-private-cluster', `az aks update --resource-group ${resourceGroup} --name ${clusterName} --enable-apiserver-vnet-integration`],
      ['aks-local-accounts', `az aks update --resource-group ${resourceGroup} --name ${clusterName} --disable-local-accounts`],
    ];
    const findings = run.warnings.filter((line) => line.startsWith('['));
    assert.equal(findings.length, expected.length, run.warnings.join('\n'));
    for (const [id, fix] of expected) {
      const warning = findings.find((line) => line.includes(` ${id} `));
      assert.ok(warning, `no warning for ${id}`);
      assert.ok(warning.includes(`Fix: ${fix}`), warning);
    }
    assert.equal(run.summaries.length, 1);
    assert.match(run.summaries[0], /## Private Link Guard \(audit\)/);
    assert.match(run.summaries[0], /❌ fail \| `acr-public-network`/);
    assert.match(run.summaries[0], /✅ pass \| `acr-anonymous-pull`/);
    assert.ok(run.summaries[0].includes(`--public-network-enabled false --default-action Deny`));
    assert.equal(patches().length, patchesBefore, 'audit changes nothing');
  });

  test('enforce: fails on the high findings in one line', async () => {
    const { resourceGroup, registryName, clusterName } = setUp(OPEN_REGISTRY, PUBLIC_CLUSTER);
    const run = await guard({ resourceGroup, registryName, clusterName, mode: 'enforce' });
    assertFailedWith(run, /^Private posture not met \(4 finding\(s\), 2 high\): acr-public-network, aks-private-cluster; the report lists the fixes\.$/);
    assert.deepEqual(run.outputs, { findings: '4', highFindings: '2', remediated: '0' });
  });

  test('enforce: medium findings only succeed with issues; a private posture succeeds', async () => {
    const { resourceGroup, registryName, clusterName } = setUp({ adminUserEnabled: true });
    const medium = await guard({ resourceGroup, registryName, clusterName, mode: 'enforce' });
    assertResult(medium, 'SucceededWithIssues');
    assert.deepEqual(medium.outputs, { findings: '1', highFindings: '0', remediated: '0' });

    const clean = setUp();
    const run = await guard({ resourceGroup: clean.resourceGroup, registryName: clean.registryName, clusterName: clean.clusterName, mode: 'enforce' });
    assertResult(run, 'Succeeded');
    assert.deepEqual(run.warnings, []);
    assert.equal(run.message, 'Private posture verified (11 checks).');
    assert.deepEqual(run.outputs, { findings: '0', highFindings: '0', remediated: '0' });
  });

  test('remediate: one PATCH closes the registry, the run passes, and a second run finds nothing', async () => {
    const { resourceGroup, registryName } = setUp({ ...OPEN_REGISTRY, anonymousPullEnabled: true });
    const patchesBefore = patches().length;
    const run = await guard({ resourceGroup, registryName, mode: 'remediate' });
    assertResult(run, 'Succeeded');
    assert.deepEqual(run.outputs, { findings: '0', highFindings: '0', remediated: '3' });
    const sent = patches().slice(patchesBefore);
    assert.equal(sent.length, 1);
    assert.deepEqual(sent[0].body, {
      properties: { publicNetworkAccess: 'Disabled', networkRuleSet: { defaultAction: 'Deny', ipRules: [] }, adminUserEnabled: false, anonymousPullEnabled: false },
    });
    assert.match(run.maskedOutput, /Changed publicNetworkAccess: Enabled → Disabled/);
    assert.ok(run.summaries[0].includes(`- changed registry '${registryName}': networkRuleSet.defaultAction: Allow → Deny`), run.summaries[0]);

    const second = await guard({ resourceGroup, registryName, mode: 'remediate' });
    assertResult(second, 'Succeeded');
    assert.deepEqual(second.outputs, { findings: '0', highFindings: '0', remediated: '0' });
    assert.equal(patches().length, patchesBefore + 1);
  });

  test('remediate without an approved private endpoint refuses to close public access and says why', async () => {
    const { resourceGroup, registryName } = setUp({ publicNetworkAccess: 'Enabled', networkRuleSet: { defaultAction: 'Allow', ipRules: [] } }, undefined, false);
    const patchesBefore = patches().length;
    const run = await guard({ resourceGroup, registryName, mode: 'remediate' });
    assertFailedWith(run, /^Private posture not met \(2 finding\(s\), 2 high, 0 remediated\): acr-public-network, acr-private-endpoint;/);
    assert.ok(run.warnings.some((line) => /^Not remediated: acr-public-network: public access stays open because the registry has no approved private endpoint connection/.test(line)), run.warnings.join('\n'));
    assert.ok(run.warnings.some((line) => line.includes(`az acr private-endpoint-connection approve --registry-name ${registryName} --resource-group ${resourceGroup} --name pe-agents`)));
    assert.match(run.summaries[0], /not changed: acr-public-network/);
    assert.equal(patches().length, patchesBefore);
  });
});

describe('the Terraform state account', () => {
  const PUBLIC_ACCOUNT: StorageAccountProperties = {
    publicNetworkAccess: 'Enabled',
    networkAcls: { bypass: 'AzureServices', defaultAction: 'Allow', ipRules: [], virtualNetworkRules: [] },
    allowBlobPublicAccess: true,
    allowSharedKeyAccess: true,
    minimumTlsVersion: 'TLS1_0',
  };

  /** A storage account in a resource group of its own, with an approved blob private endpoint unless told otherwise. */
  function account(properties?: StorageAccountProperties, blobEndpoint = true) {
    const storageResourceGroup = `rg-state-${randomUUID().slice(0, 8)}`;
    const storageAccountName = `tfstate${randomBytes(4).toString('hex')}`;
    arm.addStorageAccount(storageResourceGroup, storageAccountName, properties);
    if (blobEndpoint) arm.addStoragePrivateEndpoint(storageResourceGroup, storageAccountName, `pe-${storageAccountName}`, 'blob', 'Approved');
    return { storageResourceGroup, storageAccountName };
  }

  test('audit: every setting of a public account is a warning naming its az storage account update fix', async () => {
    const { storageResourceGroup, storageAccountName } = account(PUBLIC_ACCOUNT);
    const run = await guard({ resourceGroup: 'rg-platform', storageResourceGroup, storageAccountName, mode: 'audit' });
    assertResult(run, 'SucceededWithIssues');
    assert.deepEqual(run.outputs, { findings: '5', highFindings: '3', remediated: '0' });
    for (const [id, switches] of [
      ['storage-public-network', '--public-network-access Disabled'],
      ['storage-default-action', '--default-action Deny'],
      ['storage-blob-public-access', '--allow-blob-public-access false'],
      ['storage-shared-key', '--allow-shared-key-access false'],
      ['storage-tls-version', '--min-tls-version TLS1_2'],
    ]) {
      const warning = run.warnings.find((line) => line.includes(` ${id} `));
      assert.ok(warning?.endsWith(`Fix: az storage account update --name ${storageAccountName} --resource-group ${storageResourceGroup} ${switches}`), `${id}: ${warning}`);
    }
    assert.match(run.summaries[0], new RegExp(`❌ fail \\| \`storage-public-network\` .* \\| storage account '${storageAccountName}' \\| high \\| publicNetworkAccess=Enabled \\|`));
  });

  test('remediate: closes the account in one PATCH where a blob private endpoint is approved; Shared Key is reported, not changed', async () => {
    const { storageResourceGroup, storageAccountName } = account(PUBLIC_ACCOUNT);
    const patchesBefore = patches().length;
    const run = await guard({ resourceGroup: 'rg-platform', storageResourceGroup, storageAccountName, mode: 'remediate' });
    assertResult(run, 'SucceededWithIssues');
    assert.deepEqual(run.outputs, { findings: '1', highFindings: '0', remediated: '4' });
    assert.equal(patches().length, patchesBefore + 1);
    assert.match(run.summaries[0], new RegExp(`changed storage account '${storageAccountName}': publicNetworkAccess: Enabled → Disabled`));
    assert.match(run.summaries[0], /not changed: storage-shared-key: Shared Key stays allowed/);
    assert.equal((arm.storageAccount(storageResourceGroup, storageAccountName)!.properties as Record<string, unknown>).publicNetworkAccess, 'Disabled');
  });

  test('remediate without a blob private endpoint refuses in one warning and changes nothing', async () => {
    const { storageResourceGroup, storageAccountName } = account({ publicNetworkAccess: 'Enabled' }, false);
    const patchesBefore = patches().length;
    const run = await guard({ resourceGroup: 'rg-platform', storageResourceGroup, storageAccountName, mode: 'remediate' });
    assertFailedWith(run, /^Private posture not met \(2 finding\(s\), 2 high, 0 remediated\): storage-public-network, storage-private-endpoint;/);
    const refusals = run.warnings.filter((line) => line.startsWith('Not remediated: '));
    assert.equal(refusals.length, 1, run.warnings.join('\n'));
    assert.match(refusals[0], /^Not remediated: storage-public-network: public access stays open because the storage account has no approved private endpoint for the blob service;/);
    assert.equal(patches().length, patchesBefore);
  });

  test('the blob endpoint is named with the cloud suffix the connection carries, or its environment\'s', async () => {
    for (const [data, suffix] of [
      [{ storageEndpointSuffix: '.core.usgovcloudapi.net' }, 'core.usgovcloudapi.net'],
      [{ environment: 'AzureChinaCloud' }, 'core.chinacloudapi.cn'],
      [{}, 'core.windows.net'],
    ] as const) {
      const { storageResourceGroup, storageAccountName } = account();
      const run = await guard(
        { resourceGroup: 'rg-platform', storageResourceGroup, storageAccountName, mode: 'audit', dnsCheck: 'true' },
        connection('Reader', { activeDirectoryServiceEndpointResourceId: arm.audience, ...data }),
      );
      const warning = run.warnings.find((line) => line.includes(' storage-private-dns '));
      assert.ok(warning?.includes(`blob endpoint ${storageAccountName}.blob.${suffix} → `), warning);
      assert.ok(warning?.includes(`--zone-name privatelink.blob.${suffix} `), warning);
    }
  });
});

describe('from the agent', () => {
  test('dnsCheck on: the system resolver gives no private address for the registry, so acr-private-dns fails', async () => {
    const { resourceGroup, registryName } = setUp();
    const run = await guard({ resourceGroup, registryName, mode: 'enforce', dnsCheck: 'true' });
    assertFailedWith(run, /\(1 finding\(s\), 1 high\): acr-private-dns;/);
    const warning = run.warnings.find((line) => line.includes(' acr-private-dns '));
    assert.match(warning ?? '', new RegExp(`${registryName}\\.azurecr\\.io → (no answer|.*\\(not private\\))`));
    assert.match(warning ?? '', /az network private-dns link vnet create .* --zone-name privatelink\.azurecr\.io /);
  });

  test('without activeDirectoryServiceEndpointResourceId the token is for the ARM URL itself', async () => {
    const { resourceGroup, clusterName } = setUp();
    const before = entra.tokenRequests.length;
    const run = await guard({ resourceGroup, clusterName, mode: 'enforce' }, connection('Reader', {}));
    assertResult(run, 'Succeeded');
    assert.deepEqual(entra.tokenRequests.slice(before).map((request) => request.scope), [`${arm.url}/.default`]);
  });
});

describe('one-line errors', () => {
  test('a registry that does not exist', async () => {
    const { resourceGroup } = setUp();
    const run = await guard({ resourceGroup, registryName: 'missingregistry', mode: 'audit' });
    assertFailedWith(run, /^Cannot read registry 'missingregistry' in resource group 'rg-[0-9a-f]+': it does not exist \(ResourceNotFound: .*\)\. Check the name, the resource group and the connection's subscription\.$/);
  });

  test('a cluster that does not exist', async () => {
    const { resourceGroup } = setUp();
    const run = await guard({ resourceGroup, clusterName: 'missing-cluster', mode: 'audit' });
    assertFailedWith(run, /^Cannot read cluster 'missing-cluster' .*it does not exist \(ResourceNotFound: /);
  });

  test('a connection without read rights (403)', async () => {
    const { resourceGroup, registryName } = setUp();
    const run = await guard({ resourceGroup, registryName, mode: 'audit' }, connection(undefined));
    assertFailedWith(run, /^The service connection may not read registry '.*' \(AuthorizationFailed: .*\)\. Grant its identity the Reader role on the registry or its resource group\.$/);
  });

  test('no resource named', async () => {
    const run = await guard({ resourceGroup: 'rg', mode: 'audit' });
    assertFailedWith(run, /^Input 'registryName': none of registryName, clusterName and storageAccountName is set/);
  });

  test('a blob URL where the storage account name belongs', async () => {
    const run = await guard({ resourceGroup: 'rg', storageAccountName: 'https://tfstate.blob.core.windows.net', mode: 'audit' });
    assertFailedWith(run, /^Input 'storageAccountName': 'https:\/\/tfstate\.blob\.core\.windows\.net' is not valid: a storage account name is 3-24 lowercase letters and digits/);
  });

  test('a connection whose storage suffix is not a DNS suffix', async () => {
    const run = await guard({ resourceGroup: 'rg', storageAccountName: 'tfstate', mode: 'audit' }, connection('Reader', { activeDirectoryServiceEndpointResourceId: arm.audience, storageEndpointSuffix: 'https://core.windows.net/' }));
    assertFailedWith(run, /^Input 'azureSubscription': the service connection's storageEndpointSuffix 'https:\/\/core\.windows\.net\/' is not a DNS suffix/);
  });

  test('a login server where the registry name belongs', async () => {
    const run = await guard({ resourceGroup: 'rg', registryName: 'contoso.azurecr.io', mode: 'audit' });
    assertFailedWith(run, /^Input 'registryName': 'contoso\.azurecr\.io' is not valid: a registry name is 5-50 letters and digits/);
  });
});
