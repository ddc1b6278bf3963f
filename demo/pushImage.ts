import { join } from 'node:path';
import { makeLayers, writeOciLayout } from '../test/fixtures/images.js';
import { runTask } from '../test/support/taskRunner.js';
import type { DemoStep } from './run.js';

/** PrivateAcrPushImage@1 with a service principal connection, pushing a three-layer OCI layout. */
export const pushImageStep: DemoStep = {
  title: 'PrivateAcrPushImage@1 — push a sample image (OCI layout, 3 layers) as a service principal',
  async run({ env, work, outputs }) {
    const imagePath = join(work, 'sample-image');
    await writeOciLayout(imagePath, { layers: makeLayers(3, 1024 * 1024, 2026) });
    const principal = env.addServicePrincipal('push');
    const run = await runTask('PrivateAcrPushImage', {
      inputs: { azureSubscription: 'contoso-arm', registry: env.registryHost, repository: 'demo/sample', imagePath, tags: '$(Build.BuildId)\nlatest' },
      connections: {
        'contoso-arm': {
          scheme: 'ServicePrincipal',
          url: 'https://management.azure.com/',
          parameters: { serviceprincipalid: principal.clientId, serviceprincipalkey: principal.clientSecret, tenantid: env.entra.tenantId, authenticationType: 'spnKey' },
          data: { environmentAuthorityUrl: env.entra.authorityUrl },
        },
      },
      env: { NODE_EXTRA_CA_CERTS: env.ca.caCertPath },
    });
    outputs.pushedImageRef = run.outputs.imageRef ?? '';
    return run;
  },
};
