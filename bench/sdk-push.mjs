// The peer for the push benchmark: @azure/container-registry's ContainerRegistryContentClient
// uploading an OCI layout's blobs and then its manifest. CONCURRENCY=1 is the client as its samples
// use it, one blob after another; CONCURRENCY=4 gives it the parallelism our task has.
// The SDK exchanges tokens at `<endpoint>/oauth2/exchange`, where the benchmark's registry has no
// token server, so the benchmark mints the ACR access token and a pipeline policy attaches it;
// what is measured is the SDK's upload path, not its login.
import { ContainerRegistryContentClient } from '@azure/container-registry';
import { createReadStream, readFileSync } from 'node:fs';
import { join } from 'node:path';

const { REGISTRY_URL, REPOSITORY, LAYOUT, TAG } = process.env;
const concurrency = Number(process.env.CONCURRENCY ?? 1);
const accessToken = readFileSync(process.env.ACCESS_TOKEN_FILE, 'utf8').trim();
const attachToken = { name: "benchAcrToken", sendRequest: (request, next) => (request.headers.set('authorization', `Bearer ${accessToken}`), next(request)) };
const unusedCredential = { getToken: async () => ({ token: 'unused', expiresOnTimestamp: Date.now() + 3_600_000 }) };
const client = new ContainerRegistryContentClient(REGISTRY_URL, REPOSITORY, unusedCredential, { additionalPolicies: [{ policy: attachToken, position: 'perRetry' }] });

const blobPath = (digest) => join(LAYOUT, 'blobs', 'sha256', digest.slice('sha256:'.length));
const index = JSON.parse(readFileSync(join(LAYOUT, 'index.json'), 'utf8'));
const manifestBytes = readFileSync(blobPath(index.manifests[0].digest));
const manifest = JSON.parse(manifestBytes);
const blobs = [manifest.config, ...manifest.layers];
let next = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < blobs.length) {
      const blob = blobs[next++];
      const uploaded = await client.uploadBlob(createReadStream(blobPath(blob.digest)));
      if (uploaded.digest !== blob.digest) throw new Error(`uploaded ${uploaded.digest}, expected ${blob.digest}`);
    }
  }),
);
await client.setManifest(manifestBytes, { tag: TAG, mediaType: manifest.mediaType });
