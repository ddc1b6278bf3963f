// The build's side of the registry: base images read through the registry session (the same
// identity, any registry it may read), and the built image as the push expects it — its own layers
// uploaded from the compressed files, the base's layers mounted from the base's repository (or
// streamed across from the base's registry when that is another one).
import { createReadStream } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { UserError } from '../errors.js';
import type { RegistrySession } from '../acr/session.js';
import { remoteBlob } from '../oci/copy.js';
import { fileBlob, memoryBlob, resolved, type BlobSource, type ManifestSource, type RenderedManifest } from '../oci/content.js';
import { formatImageName, type ImageName, type ImageReader } from './baseImage.js';
import type { AssembledImage, ImageLayer, PlatformImage } from './assemble.js';
import { OCI_CONFIG } from './assemble.js';

/** Reads base images with the session's identity; blobs go through a private scratch folder once each. */
export class RegistryImageReader implements ImageReader {
  private scratch?: Promise<string>;
  private readonly downloads = new Map<string, Promise<string>>();

  constructor(
    private readonly session: RegistrySession,
    private readonly tempDir: string,
  ) {}

  manifest(image: ImageName, reference: string): Promise<RenderedManifest | undefined> {
    return this.session.clientFor(image.registry).repository(image.repository, 'pull').getManifest(reference);
  }

  async blob(image: ImageName, digest: string): Promise<Readable> {
    const key = `${image.registry}/${image.repository}@${digest}`;
    let file = this.downloads.get(key);
    if (!file) {
      file = (async () => {
        this.scratch ??= mkdtemp(join(this.tempDir, 'registry-blobs-'));
        const path = join(await this.scratch, digest.replace(':', '-'));
        await this.session.clientFor(image.registry).repository(image.repository, 'pull').downloadBlob(digest, path);
        return path;
      })();
      file.catch(() => this.downloads.delete(key));
      this.downloads.set(key, file);
    }
    return createReadStream(await file);
  }
}

/**
 * A base layer is in the target repository already, or reaches it by a cross-repository mount
 * from the base's repository (one token scoped for both): base layers are never downloaded to be
 * pushed again. A base in another registry cannot be mounted; its layers stream across, registry
 * to registry, without touching the disk.
 */
function baseLayer(layer: Extract<ImageLayer, { kind: 'base' }>, session: RegistrySession): BlobSource {
  const { descriptor, base } = layer;
  return {
    async push(target) {
      if (await target.has(descriptor.digest)) return descriptor;
      if (base.name.registry !== session.client.host) {
        const source = session.clientFor(base.name.registry).repository(base.name.repository, 'pull');
        await target.upload({ ...remoteBlob(source, descriptor), mediaType: descriptor.mediaType });
        return descriptor;
      }
      if (await target.mount(descriptor.digest, base.name.repository)) return descriptor;
      throw new UserError(
        `The registry did not mount layer ${descriptor.digest} of the base ${formatImageName(base.name)} into the target repository: the identity needs pull rights on ${base.name.repository} (AcrPull, or a token whose scope map includes it).`,
      );
    },
  };
}

/** A layer the tags already pointed at (a rebuild): it must still be in the repository. */
function knownLayer(layer: Extract<ImageLayer, { kind: 'built' }>): BlobSource {
  return {
    async push(target) {
      if (await target.has(layer.descriptor.digest)) return layer.descriptor;
      throw new UserError(`Layer ${layer.descriptor.digest}, which the image the tags point at uses, is no longer in the repository; run the build again.`);
    },
  };
}

function platformManifest(image: PlatformImage, session: RegistrySession): ManifestSource {
  const blobs: BlobSource[] = [resolved(memoryBlob(image.config.bytes, OCI_CONFIG))];
  for (const layer of image.layers) {
    if (layer.kind === 'base') blobs.push(baseLayer(layer, session));
    else if (layer.file) blobs.push(resolved(fileBlob(layer.file, 0, layer.descriptor.size, layer.descriptor.digest, layer.descriptor.mediaType)));
    else blobs.push(knownLayer(layer));
  }
  return { blobs, children: [], render: () => Promise.resolve(image.manifest) };
}

/** What the push takes: one manifest, or an index whose children are the platforms' manifests. */
export function pushSource(built: AssembledImage, session: RegistrySession): ManifestSource {
  const children = built.images.map((image) => platformManifest(image, session));
  if (children.length === 1) return children[0];
  return { blobs: [], children, render: () => Promise.resolve(built.root) };
}
