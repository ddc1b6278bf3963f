// Registry names, repositories and tags as users type them: what is accepted (normalised) and
// what is refused with a message naming the input.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InputError } from '../../src/errors.js';
import { formatImageReference, parseImageReference, parseRegistryHost, validateRepository, validateTag } from '../../src/oci/reference.js';

describe('registry login server', () => {
  const accepted: [string, string][] = [
    ['contoso.azurecr.io', 'contoso.azurecr.io'],
    ['Contoso.AzureCR.io', 'contoso.azurecr.io'],
    ['https://contoso.azurecr.io/', 'contoso.azurecr.io'],
    ['127.0.0.1:5000', '127.0.0.1:5000'],
    ['registry.internal:443', 'registry.internal:443'],
    ['[::1]:5000', '[::1]:5000'],
  ];
  for (const [value, expected] of accepted) test(`accepts ${value}`, () => assert.equal(parseRegistryHost(value), expected));
  const refused: [string, RegExp][] = [
    ['http://contoso.azurecr.io', /plain http/],
    ['contoso.azurecr.io/team', /not a registry login server/],
    ['', /not a registry login server/],
    ['bad_host!', /not a registry login server/],
  ];
  for (const [value, message] of refused) {
    test(`refuses '${value}'`, () => assert.throws(() => parseRegistryHost(value), (error: unknown) => error instanceof InputError && error.input === 'registry' && message.test(error.message)));
  }
});

describe('repository names', () => {
  for (const name of ['app', 'team/web-api', 'a/b/c', 'web.api_v2', 'x__y', 'a--b']) test(`accepts ${name}`, () => assert.equal(validateRepository(name), name));
  test('trims slashes users leave around it', () => assert.equal(validateRepository('/team/web/'), 'team/web'));
  for (const name of ['Team/App', 'team//web', '-web', 'web-', 'web..api', 'a'.repeat(256)]) {
    test(`refuses ${name.slice(0, 20)}`, () => assert.throws(() => validateRepository(name), /Input 'repository': .* is not a valid repository name/));
  }
});

describe('tags', () => {
  for (const tag of ['1.0.0', 'latest', '4711', 'v1.2.3-rc.1', '_internal', 'a'.repeat(128)]) test(`accepts ${tag.slice(0, 20)}`, () => assert.equal(validateTag(tag), tag));
  for (const tag of ['-bad', '.hidden', '1.0+build', 'with space', 'a'.repeat(129), '']) {
    test(`refuses '${tag.slice(0, 20)}'`, () => assert.throws(() => validateTag(tag), /Input 'tags': .* is not a valid tag/));
  }
});

describe('image references', () => {
  const digest = `sha256:${'a'.repeat(64)}`;
  const accepted: [string, object][] = [
    ['team/app:1.0', { host: undefined, repository: 'team/app', tag: '1.0', digest: undefined }],
    [`team/app@${digest}`, { host: undefined, repository: 'team/app', tag: undefined, digest }],
    [`contoso.azurecr.io/team/app@${digest}`, { host: 'contoso.azurecr.io', repository: 'team/app', tag: undefined, digest }],
    [`127.0.0.1:5000/app:v2@${digest}`, { host: '127.0.0.1:5000', repository: 'app', tag: 'v2', digest }],
    ['localhost/app:1', { host: 'localhost', repository: 'app', tag: '1', digest: undefined }],
    ['ghcr.io/aquasecurity/trivy-db:2', { host: 'ghcr.io', repository: 'aquasecurity/trivy-db', tag: '2', digest: undefined }],
  ];
  for (const [value, expected] of accepted) test(`reads ${value.slice(0, 40)}`, () => assert.deepEqual(parseImageReference(value, 'image'), expected));
  test('writes back what it read', () => assert.equal(formatImageReference(parseImageReference(`127.0.0.1:5000/app:v2@${digest}`, 'image')), `127.0.0.1:5000/app:v2@${digest}`));
  const refused: [string, RegExp][] = [
    ['team/app', /names no tag or digest/],
    ['team/app@sha256:abc', /malformed digest/],
    ['Team/App:1', /invalid repository name/],
    ['team/app:-x', /invalid tag/],
    ['bad_host.io:x:1/app:1', /invalid repository name|not a registry host/],
  ];
  for (const [value, message] of refused) {
    test(`refuses '${value}'`, () => assert.throws(() => parseImageReference(value, 'image'), (error: unknown) => error instanceof InputError && error.input === 'image' && message.test(error.message)));
  }
});
