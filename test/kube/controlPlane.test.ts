// The test control plane enforces what a real cluster enforces: client
// certificates and service-account tokens authenticate, RBAC denies what no
// binding grants, Pod Security admission applies each namespace's label, and
// the built kubectl talks to it.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KubeApiError, startControlPlane, type ControlPlane } from './controlPlane.js';
import type { KubeClient } from './kubeClient.js';

interface SelfSubjectReview {
  status: { userInfo: { username: string; groups?: string[] } };
}

async function whoAmI(client: KubeClient): Promise<SelfSubjectReview['status']['userInfo']> {
  const review = await client.request<SelfSubjectReview>('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'SelfSubjectReview',
  });
  return review.status.userInfo;
}

function pod(name: string, securityContext: Record<string, unknown>): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: { containers: [{ name: 'app', image: 'registry.test/app:1', securityContext }] },
  };
}

/** Satisfies Pod Security `restricted`. */
const RESTRICTED_CONTAINER = {
  runAsNonRoot: true,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

async function rejection(promise: Promise<unknown>): Promise<KubeApiError> {
  const error = await promise.then(() => undefined, (reason: unknown) => reason);
  assert.ok(error instanceof KubeApiError, `expected a KubeApiError, got ${String(error)}`);
  return error;
}

void describe('test control plane', () => {
  let dir: string;
  let cluster: ControlPlane;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'control-plane-'));
    cluster = await startControlPlane({ dir });
  });

  after(async () => {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  void it('serves TLS from the test CA and authenticates the admin by client certificate', async () => {
    assert.match(cluster.server, /^https:\/\/127\.0\.0\.1:\d+$/);
    const admin = await whoAmI(cluster.admin);
    assert.equal(admin.username, 'kube-admin');
    assert.ok(admin.groups?.includes('system:masters'));
    assert.equal((await stat(cluster.adminKubeconfigPath)).mode & 0o777, 0o600);
  });

  void it('runs the built kubectl with the admin kubeconfig', async () => {
    const version = JSON.parse(await cluster.kubectl(['version', '--output=json'])) as { clientVersion: { gitVersion: string }; serverVersion: { gitVersion: string } };
    assert.match(version.serverVersion.gitVersion, /^v1\.\d+\.\d+$/);
    assert.equal(version.clientVersion.gitVersion, version.serverVersion.gitVersion);
    await cluster.kubectl(['create', 'namespace', 'from-kubectl']);
    const namespace = JSON.parse(await cluster.kubectl(['get', 'namespace', 'from-kubectl', '--output=json'])) as { status: { phase: string } };
    assert.equal(namespace.status.phase, 'Active');
  });

  void it('rejects a privileged pod in a restricted namespace and admits it where the label allows it', async () => {
    await cluster.createNamespace('locked', { podSecurity: 'restricted' });
    await cluster.createNamespace('open', { podSecurity: 'privileged' });

    const refused = await rejection(cluster.admin.request('POST', '/api/v1/namespaces/locked/pods', pod('root', { privileged: true })));
    assert.equal(refused.statusCode, 403);
    assert.match(refused.serverMessage, /violates PodSecurity "restricted:latest": privileged/);

    await cluster.admin.request('POST', '/api/v1/namespaces/locked/pods', pod('compliant', RESTRICTED_CONTAINER));
    await cluster.admin.request('POST', '/api/v1/namespaces/open/pods', pod('root', { privileged: true }));
  });

  void it('denies a service account what RBAC does not grant, and allows what a binding grants', async () => {
    await cluster.createNamespace('team');
    await cluster.createServiceAccount('team', 'deployer');
    const deployer = await cluster.clientFor({ token: await cluster.mintServiceAccountToken('team', 'deployer') });
    try {
      assert.equal((await whoAmI(deployer)).username, 'system:serviceaccount:team:deployer');
      const denied = await rejection(deployer.request('GET', '/apis/apps/v1/namespaces/team/deployments'));
      assert.equal(denied.statusCode, 403);
      assert.equal(denied.reason, 'Forbidden');
      assert.match(denied.serverMessage, /"system:serviceaccount:team:deployer" cannot list resource "deployments" in API group "apps" in the namespace "team"/);

      await cluster.admin.request('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles', {
        metadata: { name: 'read-deployments' },
        rules: [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['list'] }],
      });
      await cluster.admin.request('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings', {
        metadata: { name: 'deployer-reads-deployments' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read-deployments' },
        subjects: [{ kind: 'ServiceAccount', name: 'deployer', namespace: 'team' }],
      });
      const list = await deployer.request<{ items: unknown[] }>('GET', '/apis/apps/v1/namespaces/team/deployments');
      assert.deepEqual(list.items, []);
      const stillDenied = await rejection(deployer.request('GET', '/api/v1/namespaces/team/secrets'));
      assert.equal(stillDenied.statusCode, 403);
    } finally {
      deployer.close();
    }
  });

  void it('rejects a token the API server did not sign', async () => {
    const token = await cluster.mintServiceAccountToken('default', 'default');
    const [header, payload, signature] = token.split('.');
    const tampered = `${header}.${payload}.${signature.slice(0, -4)}AAAA`;
    const stranger = await cluster.clientFor({ token: tampered });
    try {
      assert.equal((await rejection(whoAmI(stranger))).statusCode, 401);
    } finally {
      stranger.close();
    }
  });

  void it('writes an in-cluster service-account folder whose token authenticates', async () => {
    await cluster.createServiceAccount('team', 'agent');
    const folder = await cluster.writeInClusterFolder('team', 'agent');
    assert.equal(await readFile(path.join(folder, 'namespace'), 'utf8'), 'team');
    assert.equal(await readFile(path.join(folder, 'ca.crt'), 'utf8'), cluster.caPem);
    assert.equal((await stat(path.join(folder, 'token'))).mode & 0o777, 0o600);
    const agent = await cluster.clientFor({ token: await readFile(path.join(folder, 'token'), 'utf8') });
    try {
      assert.equal((await whoAmI(agent)).username, 'system:serviceaccount:team:agent');
    } finally {
      agent.close();
    }
  });

  void it('writes kubeconfigs for other users that kubectl honours', async () => {
    const kubeconfig = await cluster.kubeconfigFor({ user: 'jane', groups: ['developers'] });
    assert.equal((await stat(kubeconfig)).mode & 0o777, 0o600);
    assert.equal((await cluster.kubectl(['auth', 'can-i', 'create', 'selfsubjectreviews.authentication.k8s.io'], { kubeconfig })).trim(), 'yes');
    await assert.rejects(cluster.kubectl(['auth', 'can-i', 'create', 'deployments', '--namespace=team'], { kubeconfig }), /exit 1/);
    const whoami = JSON.parse(await cluster.kubectl(['auth', 'whoami', '--output=json'], { kubeconfig })) as SelfSubjectReview;
    assert.equal(whoami.status.userInfo.username, 'jane');
    assert.ok(whoami.status.userInfo.groups?.includes('developers'));
  });
});
