import { ContentError, InputError } from '../errors.js';
import { DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST } from '../oci/mediaTypes.js';
import { compressLayer, type CompressingLayer } from './compress.js';
import { fileBlob, memoryBlob, renderJson, resolved, type BlobSource, type BlobTarget, type ManifestSource, type PushedBlob } from '../oci/content.js';
import { readMember, type TarMember } from '../archive/tar.js';
import { ImageJson, MAX_JSON_BYTES } from './shape.js';

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
// Docker 25+ names every file of the archive by its digest, as an OCI layout does.
const BLOB_NAME = /^blobs\/sha256\/([a-f0-9]{64})$/;

export interface DockerArchiveOptions {
  compressionLevel: number;
  /** The task input, for InputErrors. */
  input: string;
  /** The archive as the user gave it (a .tar.gz unpacks elsewhere). */
  path: string;
}

/**
 * A `docker save` tarball, before Docker 25 (`<id>/layer.tar`) or after (`blobs/sha256/…`): both
 * carry manifest.json. Layers saved uncompressed are gzip-compressed while they upload and checked
 * against the config's diff_ids in the same pass; layers saved already compressed (the containerd
 * image store does that) go up as they are, read once. A layer the image holds twice (same diff_id)
 * is compressed and uploaded once. The result is a Docker v2 schema 2 manifest, as `docker push`
 * would produce.
 */
export async function loadDockerArchive(tarPath: string, label: string, members: Map<string, TarMember>, options: DockerArchiveOptions): Promise<ManifestSource> {
  const memberOf = (name: string, listedIn: string): TarMember => {
    const member = members.get(name);
    if (!member) throw new ContentError(`${label}: ${listedIn} lists ${name}, which is not in the archive; the tarball is incomplete.`);
    return member;
  };
  const readJson = async (name: string, listedIn: string): Promise<{ file: ImageJson; bytes: Buffer; value: unknown }> => {
    const member = memberOf(name, listedIn);
    const file = new ImageJson(label, name);
    if (member.size > MAX_JSON_BYTES) throw file.error('', `has ${member.size} bytes, far too many for the JSON file it should be`);
    const bytes = await readMember(tarPath, member);
    return { file, bytes, value: file.parse(bytes) };
  };

  const manifest = await readJson('manifest.json', 'the archive');
  const entries = manifest.file.array(manifest.value, '');
  if (entries.length !== 1) {
    throw new InputError(options.input, `${options.path} holds ${entries.length} images; save exactly one image (docker save <image>) to push it.`);
  }
  const entry = manifest.file.object(entries[0], '[0]');
  const configName = manifest.file.string(entry.Config, '[0].Config');
  const layerNames = manifest.file.array(entry.Layers, '[0].Layers').map((name, i) => manifest.file.string(name, `[0].Layers[${i}]`));

  const config = await readJson(configName, 'manifest.json');
  const rootfs = config.file.object(config.file.object(config.value, '').rootfs, 'rootfs');
  const diffIds = config.file.array(rootfs.diff_ids, 'rootfs.diff_ids').map((diffId, i) => config.file.digest(diffId, `rootfs.diff_ids[${i}]`));
  if (diffIds.length !== layerNames.length) {
    throw new ContentError(`${label}: ${configName} lists ${diffIds.length} layers (rootfs.diff_ids) but manifest.json ${layerNames.length}; the tarball is corrupt.`);
  }

  // One source per distinct layer: a layer the image holds twice has one diff_id, one blob.
  const distinct = new Map<string, PushOnce>();
  const layers = layerNames.map((name, index) => {
    const member = memberOf(name, 'manifest.json');
    const diffId = diffIds[index];
    let source = distinct.get(diffId);
    if (!source) {
      source = pushOnce(layerSource(tarPath, label, member, diffId, options.compressionLevel));
      distinct.set(diffId, source);
    }
    return source;
  });
  const configBlob = memoryBlob(config.bytes, DOCKER_CONFIG);
  return {
    blobs: [resolved(configBlob), ...distinct.values()],
    children: [],
    // Runs after every blob is pushed, so each layer's descriptor is known.
    render: async () => {
      const descriptors = await Promise.all(layers.map((layer) => layer.result()));
      return renderJson(
        {
          schemaVersion: 2,
          mediaType: DOCKER_MANIFEST,
          config: { mediaType: DOCKER_CONFIG, size: configBlob.size, digest: configBlob.digest },
          layers: descriptors.map(({ mediaType, size, digest }) => ({ mediaType, size, digest })),
        },
        DOCKER_MANIFEST,
      );
    },
  };
}

interface PushOnce extends BlobSource {
  /** The pushed descriptor; only asked for after the push. */
  result(): Promise<PushedBlob>;
}

function pushOnce(source: BlobSource): PushOnce {
  let pushed: Promise<PushedBlob> | undefined;
  return {
    push: (target) => (pushed ??= source.push(target)),
    result: () => pushed ?? Promise.reject(new Error('a layer was rendered before it was pushed')),
  };
}

function layerSource(tarPath: string, label: string, member: TarMember, diffId: string, level: number): BlobSource {
  const stored = fileBlob(tarPath, member.offset, member.size, '', DOCKER_LAYER_GZIP);
  return {
    async push(target) {
      const head = await readMember(tarPath, { offset: member.offset, size: Math.min(2, member.size) });
      if (head.equals(GZIP_MAGIC)) return pushCompressed(target, member, stored, diffId);
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

/**
 * A layer saved already gzipped goes up as it is, read once. Docker 25+ names it by its digest,
 * which the registry checks on commit (DIGEST_INVALID otherwise), so it is not hashed first; a
 * layer without such a name is hashed while it uploads.
 */
async function pushCompressed(target: BlobTarget, member: TarMember, stored: ReturnType<typeof fileBlob>, diffId: string): Promise<PushedBlob> {
  const named = BLOB_NAME.exec(member.name);
  if (named) return resolved({ ...stored, digest: `sha256:${named[1]}` }).push(target);
  const known = await target.knownLayer(diffId);
  if (known && (await target.has(known.digest))) return known;
  const { digest, size } = await target.uploadStream(() => stored.open(0, member.size));
  return { digest, size, mediaType: DOCKER_LAYER_GZIP };
}
