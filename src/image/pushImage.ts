import { formatBytes, formatDuration } from '../log.js';
import { factTable } from '../runSummary.js';
import { openImage } from './open.js';
import { pushImage, type PushResult } from '../oci/push.js';
import { openRegistrySession, type RegistrySessionOptions } from '../acr/session.js';

export interface PushContainerImageOptions extends RegistrySessionOptions {
  /** Validated repository name. */
  repository: string;
  /** OCI layout folder, docker save tarball or OCI archive (optionally .gz). */
  imagePath: string;
  /** Validated tags, at least one. */
  tags: string[];
  /** Blobs in flight at once. Default 4. */
  concurrency?: number;
  /** Private scratch space for unpacking a .tar.gz input. */
  tempDir: string;
}

export interface PushContainerImageResult extends PushResult {
  /** `registry/repository@digest`, the immutable reference to deploy. */
  imageRef: string;
  format: string;
}

/** The PrivateAcrPushImage task, without Azure DevOps: read an image from disk and push it. */
export async function pushContainerImage(options: PushContainerImageOptions): Promise<PushContainerImageResult> {
  const { logger } = options;
  const image = await openImage(options.imagePath, { tempDir: options.tempDir });
  const session = openRegistrySession(options);
  try {
    logger.info(`Pushing ${image.format} ${options.imagePath} to ${options.host}/${options.repository} (tags: ${options.tags.join(', ')})`);
    const result = await pushImage({
      client: session.client,
      repository: options.repository,
      root: image.root,
      tags: options.tags,
      concurrency: options.concurrency,
      logger,
    });
    const imageRef = `${options.host}/${options.repository}@${result.digest}`;
    logger.info(
      `Pushed ${imageRef}: ${result.blobsUploaded} blobs uploaded (${formatBytes(result.bytesUploaded)}), ${result.blobsSkipped} already present, in ${formatDuration(result.durationMs)}`,
    );
    return { ...result, imageRef, format: image.format };
  } finally {
    await Promise.all([image.close(), session.close()]);
  }
}

/** The run summary attached to the pipeline run. */
export function renderPushSummary(result: PushContainerImageResult): string {
  return factTable('Image pushed', [
    ['Image', `\`${result.imageRef}\``],
    ['Tags', result.tags.map((tag) => `\`${tag}\``).join(', ')],
    ['Source', result.format],
    ['Uploaded', `${result.blobsUploaded} blobs, ${formatBytes(result.bytesUploaded)} (${result.blobsSkipped} already in the registry)`],
    ['Time', formatDuration(result.durationMs)],
  ]);
}
