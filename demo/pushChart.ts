import { join } from 'node:path';
import { runTask } from '../test/support/taskRunner.js';
import type { DemoStep } from './run.js';

const SAMPLE_CHART = join(import.meta.dirname, '..', 'test', 'fixtures', 'charts', 'web');

/**
 * PrivateAcrPushChart@1 as a workload identity federation connection would run it: the sample
 * chart (a subchart, a schema, a .helmignore) packaged reproducibly, its version stamped with the
 * build id and its appVersion with the short digest of the image the previous step pushed.
 */
export const pushChartStep: DemoStep = {
  title: 'PrivateAcrPushChart@1 — package and push the sample Helm chart as workload identity federation',
  async run({ env, outputs }) {
    const clientId = crypto.randomUUID();
    const connection = env.devops.addServiceConnection('contoso-wif');
    const app = env.entra.addFederatedClient(clientId, { issuer: env.devops.issuer, subject: connection.subject, publicJwk: env.devops.publicJwk });
    env.tokenServer.addPrincipal(app.objectId, 'push');
    const run = await runTask('PrivateAcrPushChart', {
      inputs: {
        azureSubscription: connection.id,
        registry: env.registryHost,
        chartPath: SAMPLE_CHART,
        repository: 'demo/charts',
        chartVersion: '1.2.3+$(Build.BuildId)',
        // The image's short digest: the chart puts appVersion into a label, which allows no '@' or ':'.
        appVersion: outputs.imageDigest ? outputs.imageDigest.slice('sha256:'.length, 'sha256:'.length + 12) : '',
      },
      connections: {
        [connection.id]: { scheme: 'WorkloadIdentityFederation', parameters: { serviceprincipalid: clientId, tenantid: env.entra.tenantId }, data: { environmentAuthorityUrl: env.entra.authorityUrl } },
        SystemVssConnection: { scheme: 'OAuth', url: env.devops.collectionUri, parameters: { AccessToken: env.devops.systemAccessToken } },
      },
      variables: { 'System.OidcRequestUri': env.devops.oidcRequestUri },
      env: { NODE_EXTRA_CA_CERTS: env.ca.caCertPath },
    });
    Object.assign(outputs, { chartRef: run.outputs.chartRef ?? '', chartVersion: run.outputs.chartVersion ?? '', chartDigest: run.outputs.digest ?? '' });
    return run;
  },
};
