// The pure pieces of the guard, as tables: address classification, the names the DNS check asks
// for, the shell form of the printed fixes, and the public-access rule's corner cases.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Registry } from '@azure/arm-containerregistry';
import { azCommand } from '../../src/guard/checks.js';
import { isPrivateAddress, registryHostNames } from '../../src/guard/dnsCheck.js';
import { checkRegistry } from '../../src/guard/registryChecks.js';

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

  test('dedicated data endpoints as ARM lists them', () => {
    assert.deepEqual(registryHostNames(registry({ dataEndpointHostNames: ['contoso.westeurope.data.azurecr.io', 'contoso.northeurope.data.azurecr.io'] })), [
      'contoso.azurecr.io', 'contoso.westeurope.data.azurecr.io', 'contoso.northeurope.data.azurecr.io',
    ]);
  });

  test('derived from the login server and the home region, in any cloud', () => {
    assert.deepEqual(registryHostNames(registry({ loginServer: 'contoso.azurecr.cn', location: 'China North 3' })), ['contoso.azurecr.cn', 'contoso.chinanorth3.data.azurecr.cn']);
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
