// The pure pieces of the guard, as tables: address classification, the names the DNS check asks
// for, the shell form of the printed fixes, the public-access rule's corner cases, and what
// remediation may change on a storage account.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Registry } from '@azure/arm-containerregistry';
import type { StorageAccount } from '@azure/arm-storage/models';
import { azCommand } from '../../src/guard/checks.js';
import { isPrivateAddress, registryHostNames } from '../../src/guard/dnsCheck.js';
import { planStorageRemediation } from '../../src/guard/remediation.js';
import { checkRegistry } from '../../src/guard/registryChecks.js';
import { checkStorageAccount, type StorageEndpointConnection } from '../../src/guard/storageChecks.js';

describe('isPrivateAddress', () => {
  const cases: [string, boolean][] = [
    ['10.0.0.4', true],
    ['172.16.0.1', true],
    ['172.31.255.254', true],
    ['172.32.0.1', false],
    ['192.168.10.5', true],
    ['100.64.0.9', true],
    ['100.128.0.1', false],
    ['20.61.2.3', false],
    ['127.0.0.1', false],
    ['fd12:3456::5', true],
    ['2603:1020::1', false],
    ['::1', false],
    ['not-an-address', false],
  ];
  for (const [address, expected] of cases) test(`${address} → ${expected}`, () => assert.equal(isPrivateAddress(address), expected));
});

describe('registryHostNames', () => {
  const registry = (overrides: Partial<Registry>): Registry => ({ location: 'westeurope', sku: { name: 'Premium' }, loginServer: 'contoso.azurecr.io', ...overrides });

  const hosts = (...args: Parameters<typeof registryHostNames>) => registryHostNames(...args).map(({ host, role }) => `${role}: ${host}`);

  test('dedicated data endpoints as ARM lists them, the same names derived for the replicas not repeated', () => {
    const dedicated = registry({ dataEndpointEnabled: true, dataEndpointHostNames: ['contoso.westeurope.data.azurecr.io', 'contoso.northeurope.data.azurecr.io'] });
    assert.deepEqual(hosts(dedicated, ['westeurope', 'northeurope'], false), [
      'login server: contoso.azurecr.io', 'data endpoint (westeurope): contoso.westeurope.data.azurecr.io', 'data endpoint (northeurope): contoso.northeurope.data.azurecr.io',
    ]);
  });

  test('with a private endpoint, derived for every replica region from the login server, in any cloud', () => {
    assert.deepEqual(hosts(registry({ loginServer: 'contoso.azurecr.cn', location: 'China North 3' }), ['China North 3', 'China East 2'], true), [
      'login server: contoso.azurecr.cn', 'data endpoint (chinanorth3): contoso.chinanorth3.data.azurecr.cn', 'data endpoint (chinaeast2): contoso.chinaeast2.data.azurecr.cn',
    ]);
  });

  test('with neither, only the login server: blobs come from storage accounts ACR names nowhere', () => {
    assert.deepEqual(hosts(registry({}), ['westeurope', 'eastus'], false), ['login server: contoso.azurecr.io']);
  });
});

describe('azCommand', () => {
  test('plain names and placeholders stay as they are; anything else is single-quoted', () => {
    assert.equal(azCommand(['acr', 'update', '--name', 'contoso', '--resource-group', 'rg-prod_1']), 'az acr update --name contoso --resource-group rg-prod_1');
    assert.equal(azCommand(['--vnet-name', '<vnet-name>']), 'az --vnet-name <vnet-name>');
    assert.equal(azCommand(['--resource-group', "team (o'brien)"]), `az --resource-group 'team (o'\\''brien)'`);
  });
});

describe('acr-public-network', () => {
  const ref = { resourceGroup: 'rg', name: 'contoso' };
  const verdict = (registry: Partial<Registry>) =>
    checkRegistry({ ref, registry: { location: 'westeurope', sku: { name: 'Premium' }, ...registry }, privateEndpointConnections: [] }).find((check) => check.id === 'acr-public-network')!;
  const cases: [string, Partial<Registry>, 'pass' | 'fail'][] = [
    ['public access disabled, rules ignored', { publicNetworkAccess: 'Disabled', networkRuleSet: { defaultAction: 'Allow' } }, 'pass'],
    ['deny with no IP rules', { publicNetworkAccess: 'Enabled', networkRuleSet: { defaultAction: 'Deny', ipRules: [] } }, 'pass'],
    ['deny with an IP rule', { publicNetworkAccess: 'Enabled', networkRuleSet: { defaultAction: 'Deny', ipRules: [{ iPAddressOrRange: '203.0.113.9' }] } }, 'fail'],
    ['nothing set: ARM defaults are open', {}, 'fail'],
  ];
  for (const [name, registry, status] of cases) {
    test(name, () => {
      const result = verdict(registry);
      assert.equal(result.status, status);
      assert.equal(result.fix === undefined, status === 'pass', 'a fix exactly when it fails');
    });
  }
});

const STORAGE_REF = { resourceGroup: 'rg-state', name: 'tfstate' };
const privateAccount = (overrides: Partial<StorageAccount> = {}): StorageAccount => ({
  location: 'westeurope',
  id: '/subscriptions/s/resourceGroups/rg-state/providers/Microsoft.Storage/storageAccounts/tfstate',
  publicNetworkAccess: 'Disabled',
  networkRuleSet: { defaultAction: 'Deny', bypass: 'AzureServices' },
  allowBlobPublicAccess: false,
  allowSharedKeyAccess: false,
  minimumTlsVersion: 'TLS1_2',
  ...overrides,
});
const blobEndpoint = (status: string, groupIds = ['blob']): StorageEndpointConnection => ({ name: `pe-${status}`, status, groupIds, privateEndpointId: '/pe' });

describe('storage-private-endpoint', () => {
  const verdict = (connections: StorageEndpointConnection[]) => checkStorageAccount({ ref: STORAGE_REF, account: privateAccount(), connections }).find((check) => check.id === 'storage-private-endpoint')!;
  const cases: [string, StorageEndpointConnection[], 'pass' | 'fail', RegExp][] = [
    ['an approved blob endpoint', [blobEndpoint('Approved')], 'pass', /^approved for blob: pe-Approved$/],
    ['the sub-resource is compared without case', [blobEndpoint('Approved', ['Blob'])], 'pass', /^approved for blob/],
    ['only approved endpoints for other services', [blobEndpoint('Approved', ['file']), blobEndpoint('Approved', ['dfs'])], 'fail', /Approved, file; .*Approved, dfs/],
    ['a rejected blob endpoint', [blobEndpoint('Rejected')], 'fail', /pe-Rejected: Rejected, blob/],
    ['an approved endpoint whose sub-resource is unknown', [{ ...blobEndpoint('Approved'), groupIds: undefined, unknownReason: 'the private endpoint could not be read (AuthorizationFailed)' }], 'fail', /sub-resource unknown: the private endpoint could not be read \(AuthorizationFailed\)/],
    ['none at all', [], 'fail', /^no private endpoint connections$/],
  ];
  for (const [name, connections, status, evidence] of cases) {
    test(name, () => {
      const result = verdict(connections);
      assert.equal(result.status, status);
      assert.match(result.evidence, evidence);
    });
  }
});

describe('planStorageRemediation', () => {
  const plan = (account: StorageAccount, connections: StorageEndpointConnection[]) =>
    planStorageRemediation(account, connections, checkStorageAccount({ ref: STORAGE_REF, account, connections }));

  test('a private account: nothing to change', () => {
    assert.deepEqual(plan(privateAccount(), [blobEndpoint('Approved')]), { update: {}, changes: [], refusals: [] });
  });

  test('public access closes only with an approved blob endpoint; the other fixes do not wait for it', () => {
    const open = privateAccount({ publicNetworkAccess: 'Enabled', allowBlobPublicAccess: true });
    assert.deepEqual(plan(open, [blobEndpoint('Approved')]).update, { publicNetworkAccess: 'Disabled', allowBlobPublicAccess: false });
    const refused = plan(open, [blobEndpoint('Approved', ['file'])]);
    assert.deepEqual(refused.update, { allowBlobPublicAccess: false });
    assert.equal(refused.refusals.length, 1);
    assert.match(refused.refusals[0], /^storage-public-network: public access stays open/);
  });

  test('the default action turns to Deny keeping the rules and the bypass; an account without rules gets the trusted-services bypass', () => {
    const ruled = privateAccount({ networkRuleSet: { defaultAction: 'Allow', bypass: 'Logging, Metrics, AzureServices', ipRules: [{ iPAddressOrRange: '198.51.100.0/24', action: 'Allow' }] } });
    assert.deepEqual(plan(ruled, [blobEndpoint('Approved')]).update.networkRuleSet, {
      defaultAction: 'Deny', bypass: 'Logging, Metrics, AzureServices', ipRules: [{ iPAddressOrRange: '198.51.100.0/24', action: 'Allow' }],
    });
    assert.deepEqual(plan(privateAccount({ networkRuleSet: undefined }), [blobEndpoint('Approved')]).update.networkRuleSet, { defaultAction: 'Deny', bypass: 'AzureServices' });
  });

  test('Shared Key is never turned off: Terraform backends on the account key would break', () => {
    const keyed = plan(privateAccount({ allowSharedKeyAccess: true }), [blobEndpoint('Approved')]);
    assert.deepEqual(keyed.update, {});
    assert.match(keyed.refusals[0], /^storage-shared-key: .*use_azuread_auth = true/);
  });
});
