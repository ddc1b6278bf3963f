// Image inputs as the push core reads them: every malformed file gives one ContentError or
// InputError that names imagePath and the file (never a TypeError from deeper down), and a layer
// that docker save stored already gzipped is read from disk once on its way to the real registry.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UserError } from '../../src/errors.js';
import { openImage } from '../../src/image/open.js';
import { pushContainerImage } from '../../src/image/pushImage.js';
import { silentLogger } from '../../src/log.js';
import { startAcrEnvironment, type AcrEnvironment } from '../env/environment.js';
import { archiveFolder, makeLayers, sha256, writeDockerSave, writeOciLayout } from '../fixtures/images.js';

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'image-inputs-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

type Json = Record<string, unknown>;

/** A valid one-layer layout, then `change` applied to its JSON files (by name, or `manifest` for the image manifest blob). */
async function malformedLayout(name: string, change: (files: { index: Json; manifest: Json; ociLayout: Json }) => { index?: unknown; manifest?: unknown; ociLayout?: unknown }): Promise<string> {
  const dir = join(work, name);
  await writeOciLayout(dir, { layers: makeLayers(1, 1024, 5) });
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as Json;
  const manifestDescriptor = (index.manifests as Json[])[0];
  const manifestPath = join(dir, 'blobs', 'sha256', (manifestDescriptor.digest as string).slice(7));
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Json;
  const changed = change({ index, manifest, ociLayout: { imageLayoutVersion: '1.0.0' } });
  if (changed.manifest !== undefined) {
    // A changed manifest is stored under its new digest, so the failure is about its shape, not its hash.
    const bytes = Buffer.from(JSON.stringify(changed.manifest));
    const digest = sha256(bytes);
    await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7)), bytes);
    Object.assign(manifestDescriptor, { digest, size: bytes.length });
  }
  await writeFile(join(dir, 'index.json'), typeof changed.index === 'string' ? changed.index : JSON.stringify(changed.index ?? index));
  if (changed.ociLayout !== undefined) await writeFile(join(dir, 'oci-layout'), JSON.stringify(changed.ociLayout));
  return dir;
}

/** A docker save tarball holding exactly the given files. */
async function malformedSave(name: string, files: Record<string, string | Buffer>): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  for (const [file, content] of Object.entries(files)) await writeFile(join(dir, file), content);
  await archiveFolder(dir, `${dir}.tar`);
  return `${dir}.tar`;
}

const layer = makeLayers(1, 1024, 6)[0];
const goodConfig = JSON.stringify({ rootfs: { type: 'layers', diff_ids: [sha256(layer)] } });

describe('a malformed image input is one line naming imagePath and the file', () => {
  const cases: [string, () => Promise<string>, RegExp][] = [
    ['index.json is not JSON', () => malformedLayout('not-json', () => ({ index: '{"manifests": [' })), /index\.json is not valid JSON/],
    ['index.json is a list', () => malformedLayout('index-list', () => ({ index: [] })), /index\.json must be a JSON object, not a list/],
    ['manifests is not a list', () => malformedLayout('manifests-number', () => ({ index: { schemaVersion: 2, manifests: 5 } })), /index\.json manifests must be a list, not number 5/],
    ['a descriptor without digest', () => malformedLayout('no-digest', ({ index }) => ({ index: { ...index, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 10 }] } })), /index\.json manifests\[0\]\.digest must be a non-empty string, not missing/],
    ['a size given as text', () => malformedLayout('size-text', ({ index }) => ({ index: { ...index, manifests: [{ ...(index.manifests as Json[])[0], size: '512' }] } })), /index\.json manifests\[0\]\.size must be a size in bytes .*not string "512"/],
    ['a malformed digest', () => malformedLayout('bad-digest', ({ index }) => ({ index: { ...index, manifests: [{ ...(index.manifests as Json[])[0], digest: 'sha256:xyz' }] } })), /index\.json manifests\[0\]\.digest must be a digest/],
    ['a sha512 digest', () => malformedLayout('sha512', ({ index }) => ({ index: { ...index, manifests: [{ ...(index.manifests as Json[])[0], digest: `sha512:${'a'.repeat(128)}` }] } })), /a digest algorithm this task does not support \(only sha256\)/],
    ['oci-layout without a version', () => malformedLayout('layout-version', () => ({ ociLayout: { version: 1 } })), /oci-layout imageLayoutVersion must be a non-empty string, not missing/],
    ['a manifest without layers', () => malformedLayout('no-layers', ({ manifest }) => ({ manifest: { ...manifest, layers: undefined } })), /blobs\/sha256\/[a-f0-9]{64} layers must be a list, not missing/],
    ['a manifest whose config is a string', () => malformedLayout('config-string', ({ manifest }) => ({ manifest: { ...manifest, config: 'config.json' } })), /blobs\/sha256\/[a-f0-9]{64} config must be a JSON object, not string "config\.json"/],
    ['a layer descriptor with a negative size', () => malformedLayout('negative', ({ manifest }) => ({ manifest: { ...manifest, layers: [{ ...(manifest.layers as Json[])[0], size: -1 }] } })), /layers\[0\]\.size must be a size in bytes/],
    ['docker save manifest.json is an object', () => malformedSave('save-object', { 'manifest.json': '{}' }), /manifest\.json must be a list, not an object/],
    ['docker save entry without Config', () => malformedSave('save-no-config', { 'manifest.json': JSON.stringify([{ Layers: [] }]) }), /manifest\.json \[0\]\.Config must be a non-empty string, not missing/],
    ['docker save Layers of numbers', () => malformedSave('save-layer-number', { 'manifest.json': JSON.stringify([{ Config: 'c.json', Layers: [1] }]), 'c.json': goodConfig }), /manifest\.json \[0\]\.Layers\[0\] must be a non-empty string, not number 1/],
    ['docker save config without rootfs', () => malformedSave('save-no-rootfs', { 'manifest.json': JSON.stringify([{ Config: 'c.json', Layers: ['l.tar'] }]), 'c.json': '{}', 'l.tar': layer }), /c\.json rootfs must be a JSON object, not missing/],
    ['docker save config with a diff_id that is no digest', () => malformedSave('save-diff-id', { 'manifest.json': JSON.stringify([{ Config: 'c.json', Layers: ['l.tar'] }]), 'c.json': JSON.stringify({ rootfs: { diff_ids: ['abc'] } }), 'l.tar': layer }), /c\.json rootfs\.diff_ids\[0\] must be a digest/],
    ['docker save config that is not JSON', () => malformedSave('save-config-text', { 'manifest.json': JSON.stringify([{ Config: 'c.json', Layers: ['l.tar'] }]), 'c.json': 'not json', 'l.tar': layer }), /c\.json is not valid JSON/],
    ['docker save listing a layer it lacks', () => malformedSave('save-missing', { 'manifest.json': JSON.stringify([{ Config: 'c.json', Layers: ['gone.tar'] }]), 'c.json': goodConfig }), /manifest\.json lists gone\.tar, which is not in the archive/],
  ];
  for (const [name, make, expected] of cases) {
    test(name, async () => {
      const path = await make();
      await assert.rejects(openImage(path, { tempDir: work }), (error: Error) => {
        assert.ok(error instanceof UserError, `${error.name}: ${error.message}`);
        assert.ok(error.message.startsWith(`imagePath ${path}: `), error.message);
        assert.match(error.message, expected);
        assert.doesNotMatch(error.message, /\n/);
        return true;
      });
    });
  }
});

describe('a docker save layer stored gzipped (containerd image store)', () => {
  let env: AcrEnvironment;
  before(async () => {
    env = await startAcrEnvironment();
  });
  after(async () => {
    await env?.stop();
  });

  test('is read from disk once: no hashing pass before the upload', async () => {
    const layers = makeLayers(1, 48 * 1024 * 1024, 61);
    const path = join(work, 'containerd.tar');
    const saved = await writeDockerSave(path, { layers, format: 'oci', compressedLayers: true, workDir: await mkdtemp(join(work, 'save-')) });
    const principal = env.addServicePrincipal('push');
    // Bytes this process read (files and sockets), from Linux's per-process I/O accounting.
    const bytesRead = async () => Number(/^rchar: (\d+)$/m.exec(await readFile('/proc/self/io', 'utf8'))![1]);
    const before = await bytesRead();
    const result = await pushContainerImage({
      host: env.registryHost,
      auth: { kind: 'azure', identity: { kind: 'clientSecret', authorityUrl: env.entra.authorityUrl, tenantId: env.entra.tenantId, clientId: principal.clientId, clientSecret: principal.clientSecret } },
      transport: { caCertificates: [env.ca.caCertPem] },
      repository: 'core/containerd',
      imagePath: path,
      tags: ['1'],
      tempDir: work,
      logger: silentLogger,
      secrets: { register() {} },
    });
    const read = (await bytesRead()) - before;
    const layerBytes = result.bytesUploaded;
    assert.ok(layerBytes > 20 * 1024 * 1024);
    // Once is the layer's size plus small change (manifests, answers); hashing first would double it.
    assert.ok(read < 1.3 * layerBytes, `read ${read} bytes for ${layerBytes} uploaded`);
    assert.equal(result.blobsUploaded, 2);
    assert.equal(saved.layerDigests.length, 1);
  });
});
