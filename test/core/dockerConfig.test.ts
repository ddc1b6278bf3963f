// The docker config.json the tasks hand to buildctl, Trivy and helm: owner-only, one entry per
// registry, an ACR refresh token as `identitytoken` and a registry user as `auth`, and every new
// form of a secret registered before it is written.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeDockerConfig } from '../../src/acr/dockerConfig.js';

test('one entry per registry, owner-only; a user\'s auth is registered as a secret, a refresh token goes in as identitytoken', async () => {
  const folder = await mkdtemp(join(tmpdir(), 'docker-config-'));
  try {
    const registered: string[] = [];
    const path = join(folder, 'config.json');
    await writeDockerConfig(
      path,
      new Map([
        ['contoso.azurecr.io', { identityToken: 'refresh-token' }],
        ['mirror.corp:5000', { username: 'robot', password: 'p@ss:word' }],
      ]),
      { register: (secret) => registered.push(secret) },
    );
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    const auth = Buffer.from('robot:p@ss:word').toString('base64');
    assert.deepEqual(JSON.parse(await readFile(path, 'utf8')), { auths: { 'contoso.azurecr.io': { identitytoken: 'refresh-token' }, 'mirror.corp:5000': { auth } } });
    assert.deepEqual(registered, [auth]);
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
});
