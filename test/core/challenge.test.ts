// WWW-Authenticate as registries send it: the realm and service drive the token exchange.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBearerChallenge } from '../../src/oci/challenge.js';

const cases: [string, string | undefined, ReturnType<typeof parseBearerChallenge>][] = [
  [
    'ACR',
    'Bearer realm="https://contoso.azurecr.io/oauth2/token",service="contoso.azurecr.io"',
    { realm: 'https://contoso.azurecr.io/oauth2/token', service: 'contoso.azurecr.io', scope: undefined, error: undefined },
  ],
  [
    'scope with commas and an error',
    'Bearer realm="https://auth.example/token",service="registry.example:5000",scope="repository:team/web:pull,push",error="insufficient_scope"',
    { realm: 'https://auth.example/token', service: 'registry.example:5000', scope: 'repository:team/web:pull,push', error: 'insufficient_scope' },
  ],
  ['lower-case scheme and spaces', 'bearer  realm = "https://r/t" , service="s"', { realm: 'https://r/t', service: 's', scope: undefined, error: undefined }],
  ['escaped quote', 'Bearer realm="https://r/t",service="a\\"b"', { realm: 'https://r/t', service: 'a"b', scope: undefined, error: undefined }],
  ['Basic', 'Basic realm="registry"', undefined],
  ['no realm', 'Bearer service="s"', undefined],
  ['absent', undefined, undefined],
];

for (const [name, header, expected] of cases) test(name, () => assert.deepEqual(parseBearerChallenge(header), expected));
