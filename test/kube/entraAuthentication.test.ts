// The test API server trusts the Entra stand-in as a JWT issuer the way an
// Entra-enabled AKS cluster does: tokens for the AKS audience authenticate
// (as the service principal's object id), tokens for any other audience do not.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTestCa } from '../env/ca.js';
import { startEntra, type EntraApp, type EntraStandIn } from '../env/entra.js';
import { formBody, request } from '../env/http.js';
import { AKS_AUDIENCE, KubeApiError, startControlPlane, type ControlPlane } from './controlPlane.js';

const CLIENT_ID = 'b4a8e1f0-6c2d-4f8e-9a51-0d3c7e2f1a90';
const CLIENT_SECRET = 'test-secret-for-the-entra-stand-in';

void describe('Entra authentication at the test API server', () => {
  let dir: string;
  let entra: EntraStandIn;
  let app: EntraApp;
  let cluster: ControlPlane;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'kube-entra-'));
    const ca = await createTestCa(path.join(dir, 'ca'));
    entra = await startEntra({ ca });
    app = entra.addSecretClient(CLIENT_ID, CLIENT_SECRET);
    cluster = await startControlPlane({
      dir: path.join(dir, 'cluster'),
      ca,
      oidc: { issuerUrl: `${entra.url}/${entra.tenantId}/v2.0`, audience: AKS_AUDIENCE, caPem: ca.caCertPem },
    });
  });

  after(async () => {
    await cluster?.stop();
    await entra?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function entraToken(scope: string): Promise<string> {
    const response = await request(`${entra.url}/${entra.tenantId}/oauth2/v2.0/token`, {
      method: 'POST',
      ca: cluster.caPem,
      ...formBody({ grant_type: 'client_credentials', client_id: CLIENT_ID, client_secret: CLIENT_SECRET, scope }),
    });
    assert.equal(response.status, 200, response.body);
    return (JSON.parse(response.body) as { access_token: string }).access_token;
  }

  async function whoAmIWith(token: string): Promise<string> {
    const client = await cluster.clientFor({ token });
    try {
      const review = await client.request<{ status: { userInfo: { username: string } } }>('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'SelfSubjectReview',
      });
      return review.status.userInfo.username;
    } finally {
      client.close();
    }
  }

  void it('accepts an Entra token for the AKS audience as the principal object id', async () => {
    assert.equal(await whoAmIWith(await entraToken(`${AKS_AUDIENCE}/.default`)), app.objectId);
  });

  void it('rejects an Entra token for another audience', async () => {
    const error = await whoAmIWith(await entraToken('https://management.azure.com/.default')).then(() => undefined, (reason: unknown) => reason);
    assert.ok(error instanceof KubeApiError);
    assert.equal(error.statusCode, 401);
  });

  void it('gives the Entra principal only the rights RBAC binds to its object id', async () => {
    const kubeconfig = await cluster.kubeconfigFor({ token: await entraToken(`${AKS_AUDIENCE}/.default`) });
    await assert.rejects(cluster.kubectl(['auth', 'can-i', 'list', 'pods', '--namespace=default'], { kubeconfig }), /exit 1/);
    await cluster.kubectl(['create', 'rolebinding', 'entra-viewer', '--clusterrole=view', `--user=${app.objectId}`, '--namespace=default']);
    assert.equal((await cluster.kubectl(['auth', 'can-i', 'list', 'pods', '--namespace=default'], { kubeconfig })).trim(), 'yes');
  });
});
