import { execFile } from 'node:child_process';
import { cp, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pushBase, writeBusyboxBase } from '../test/fixtures/baseImages.js';
import { secretConnection } from '../test/support/registryIdentities.js';
import { runTask } from '../test/support/taskRunner.js';
import type { DemoStep } from './run.js';

const APP = join(import.meta.dirname, 'app');

/**
 * PrivateAcrBuildImage@1 as a pipeline runs it after its compile step: demo/app's web server is
 * compiled (the script step), then built onto a base image held in the embedded registry and
 * pushed, with no container runtime. The deploy step deploys this image.
 */
export const buildImageStep: DemoStep = {
  title: 'PrivateAcrBuildImage@1 — build demo/app onto a base in the registry (no daemon, no RUN) as a service principal',
  async run({ env, work, outputs }) {
    const trust = await env.createClientTrust({ role: 'push' });
    const baseLayout = join(work, 'base-image');
    await writeBusyboxBase(baseLayout);
    await pushBase(baseLayout, trust, 'demo/base/busybox', '1');
    const context = join(work, 'app');
    await mkdir(context);
    console.log('    script step: CGO_ENABLED=0 go build -o app/server ./demo/app');
    await promisify(execFile)('go', ['build', '-trimpath', '-ldflags=-s', '-o', join(context, 'server'), '.'], { cwd: APP, env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-buildvcs=false' } });
    for (const file of ['Dockerfile', '.dockerignore']) await cp(join(APP, file), join(context, file));
    const run = await runTask('PrivateAcrBuildImage', {
      inputs: {
        azureSubscription: 'contoso-arm',
        registry: env.registryHost,
        repository: 'demo/web',
        dockerfile: join(context, 'Dockerfile'),
        buildArgs: `BASE=${env.registryHost}/demo/base/busybox:1`,
        tags: '$(Build.BuildId)\nlatest',
      },
      connections: { 'contoso-arm': secretConnection(env) },
      variables: { 'Build.Repository.Uri': 'https://dev.azure.com/contoso/demo/_git/web', 'Build.SourceVersion': '0123456789abcdef0123456789abcdef01234567' },
      env: { NODE_EXTRA_CA_CERTS: env.ca.caCertPath },
      timeoutMs: 180_000,
    });
    Object.assign(outputs, { imageRef: run.outputs.imageRef ?? '', imageDigest: run.outputs.digest ?? '', imageRepository: `${env.registryHost}/demo/web` });
    return run;
  },
};
