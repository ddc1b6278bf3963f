import { createHash } from 'node:crypto';
import { ContentError, InputError } from '../errors.js';
import { DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST } from '../oci/mediaTypes.js';
import { compressLayer, type CompressingLayer } from './compress.js';
import { parseJson } from './layout.js';
import { fileBlob, memoryBlob, renderJson, resolved, type BlobSource, type ManifestSource, type PushedBlob, type ResolvedBlob } from '../oci/content.js';
import { readMember, type TarMember } from '../archive/tar.js';

interface SaveEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

interface ImageConfig {
  rootfs?: { diff_ids?: string[] };
}

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

/**
 * A `docker save` tarball, before Docker 25 (`<id>/layer.tar`) or after (`blobs/sha256/…`): both
 * carry manifest.json. Layers saved uncompressed are gzip-compressed while they upload and checked
 * against the config's diff_ids in the same pass; layers saved already compressed (the containerd
 * image store does that) go up as they are. The result is a Docker v2 schema 2 manifest, as
 * `docker push` would produce.
 */
export async function loadDockerArchive(
  tarPath: string,
  label: string,
  members: Map<string, TarMember>,
  options: { compressionLevel: number; input: string },
): Promise<ManifestSource> {
  const read = async (name: string): Promise<Buffer> => {
    const member = members.get(name);
    if (!member) throw new ContentError(`${label} lists ${name}, which is not in the archive; the tarball is incomplete.`);
    return readMember(tarPath, member);
  };
  const entries = parseJson<SaveEntry[]>(await read('manifest.json'), `${label}: manifest.json`);
  if (!Array.isArray(entries) || entries.length !== 1) {
    const count = Array.isArray(entries) ? entries.length : 0;
    throw new InputError(options.input, `${label} holds ${count} images; save exactly one image (docker save <image>) to push it.`);
  }
  const entry = entries[0];
  const configBytes = await read(entry.Config);
  const config = memoryBlob(configBytes, DOCKER_CONFIG);
  const diffIds = parseJson<ImageConfig>(configBytes, `${label}: image config`).rootfs?.diff_ids ?? [];
  if (diffIds.length !== entry.Layers.length) {
    throw new ContentError(`${label}: the image config lists ${diffIds.length} layers but manifest.json ${entry.Layers.length}; the tarball is corrupt.`);
  }
  // Pushed descriptors in layer order, filled in by the pushes; render() runs after all of them.
  const pushed: Promise<PushedBlob>[] = [];
  const layers = entry.Layers.map((name, index): BlobSource => {
    const member = members.get(name);
    if (!member) throw new ContentError(`${label} lists layer ${name}, which is not in the archive; the tarball is incomplete.`);
    const source = layerSource(tarPath, label, member, diffIds[index], options.compressionLevel);
    return { push: (target) => (pushed[index] ??= source.push(target)) };
  });
  return {
    blobs: [resolved(config), ...layers],
    children: [],
    render: async () => {
      const descriptors = await Promise.all(pushed);
      return renderJson(
        {
          schemaVersion: 2,
          mediaType: DOCKER_MANIFEST,
          config: { mediaType: DOCKER_CONFIG, size: config.size, digest: config.digest },
          layers: descriptors.map(({ mediaType, size, digest }) => ({ mediaType, size, digest })),
        },
        DOCKER_MANIFEST,
      );
    },
  };
}

function layerSource(tarPath: string, label: string, member: TarMember, diffId: string, level: number): BlobSource {
  const stored = fileBlob(tarPath, member.offset, member.size, '', DOCKER_LAYER_GZIP);
  return {
    async push(target) {
      const head = await readMember(tarPath, { offset: member.offset, size: Math.min(2, member.size) });
      if (head.equals(GZIP_MAGIC)) return resolved({ ...stored, digest: await digestOf(stored) }).push(target);
      // What the tags point at now tells which compressed blob this layer became last time.
      const known = await target.knownLayer(diffId);
      if (known && (await target.has(known.digest))) return known;
      let lastTry: CompressingLayer | undefined;
      const { digest, size } = await target.uploadStream(() => {
        lastTry = compressLayer(stored.open(0, member.size), level);
        return lastTry.stream;
      });
      if (lastTry!.diffId() !== diffId) {
        throw new ContentError(`${label}: layer ${member.name} does not match its diff_id ${diffId} (its bytes hash to ${lastTry!.diffId()}); the tarball is corrupt.`);
      }
      return { digest, size, mediaType: DOCKER_LAYER_GZIP };
    },
  };
}

async function digestOf(blob: ResolvedBlob): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of blob.open(0, blob.size)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}
