// The one tar reader, on archives GNU tar writes in each format (so the reader is checked against a
// real producer, not against our own writer), on hand-made pax records, and on broken input; and the
// writer, read back by GNU tar.
import assert from 'node:assert/strict';
import { link, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bufferSource, indexTar, readTarEntries, TAR_END, tarHeader, tarPadding, writeTar, type TarEntry } from '../../src/archive/tar.js';
import { ContentError } from '../../src/errors.js';
import { runTool } from '../env/processes.js';

let work: string;
let tree: string;
const LONG_FOLDER = `${'folder-with-a-long-name-'.repeat(4)}end`;
const LONG_FILE = `${'f'.repeat(120)}.txt`;
const LONG_TARGET = `${'../'.repeat(2)}${'t'.repeat(110)}`;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'tar-test-'));
  // A tree with every kind of entry the formats spell differently.
  tree = join(work, 'tree');
  await mkdir(join(tree, LONG_FOLDER), { recursive: true });
  await writeFile(join(tree, 'short.txt'), 'short');
  await writeFile(join(tree, LONG_FOLDER, LONG_FILE), 'long name');
  await link(join(tree, 'short.txt'), join(tree, `zz-hard-${'h'.repeat(110)}`));
  await symlink(LONG_TARGET, join(tree, 'long-link'));
  await symlink('short.txt', join(tree, 'short-link'));
});
after(() => rm(work, { recursive: true, force: true }));

async function gnuTar(format: string): Promise<Buffer> {
  const archive = join(work, `${format}.tar`);
  await runTool('tar', [`--format=${format}`, '--sort=name', '-cf', archive, '-C', tree, '.']);
  return readFile(archive);
}

function entries(tar: Buffer): Map<string, TarEntry> {
  return new Map([...readTarEntries(bufferSource(tar), 'test.tar')].map((entry) => [entry.name.replace(/^\.\//, ''), entry]));
}

function content(tar: Buffer, entry: TarEntry | undefined): string {
  assert.ok(entry);
  return tar.subarray(entry.dataOffset, entry.dataOffset + entry.size).toString();
}

describe('reading what GNU tar writes', () => {
  for (const format of ['gnu', 'oldgnu', 'pax']) {
    test(`${format}: long names and long link targets, hard links, symbolic links`, async (t) => {
      const tar = await gnuTar(format);
      const byName = entries(tar);
      assert.equal(content(tar, byName.get('short.txt')), 'short');
      assert.equal(content(tar, byName.get(`${LONG_FOLDER}/${LONG_FILE}`)), 'long name', 'a name over 100 bytes');
      assert.equal(byName.get(`${LONG_FOLDER}/`)?.type, 'directory');
      const hard = byName.get(`zz-hard-${'h'.repeat(110)}`);
      assert.equal(hard?.type, 'hardlink');
      assert.equal(hard?.linkName.replace(/^\.\//, ''), 'short.txt');
      assert.equal(hard?.size, 0);
      assert.deepEqual([byName.get('short-link')?.type, byName.get('short-link')?.linkName], ['symlink', 'short.txt']);
      assert.equal(byName.get('long-link')?.linkName, LONG_TARGET, 'a link target over 100 bytes');
      t.diagnostic(`${byName.size} entries`);
    });
  }

  test('ustar: a long path split into prefix and name', async () => {
    const folder = join(work, 'ustar-tree');
    await mkdir(join(folder, LONG_FOLDER), { recursive: true });
    await writeFile(join(folder, LONG_FOLDER, 'inside.txt'), 'split');
    const archive = join(work, 'ustar.tar');
    await runTool('tar', ['--format=ustar', '-cf', archive, '-C', folder, '.']);
    const tar = await readFile(archive);
    assert.equal(content(tar, entries(tar).get(`${LONG_FOLDER}/inside.txt`)), 'split');
  });

  test('indexTar resolves both kinds of link to the file they name', async () => {
    const path = join(work, 'index.tar');
    await writeFile(path, await gnuTar('pax'));
    const members = await indexTar(path, 'index.tar');
    const target = members.get('short.txt');
    assert.ok(target);
    assert.equal(members.get('short-link')?.offset, target.offset);
    assert.equal(members.get(`zz-hard-${'h'.repeat(110)}`)?.offset, target.offset);
  });
});

/** A ustar header block, for archives GNU tar will not write. */
function header(name: string, size: number, typeflag: string): Buffer {
  return writeTar([{ header: { name, size, mode: 0o644, uid: 0, gid: 0, mtime: 0 }, data: Buffer.alloc(size) }])
    .subarray(0, 512)
    .map((byte, index) => (index === 156 ? typeflag.charCodeAt(0) : byte)) as Buffer;
}

function withChecksum(block: Buffer): Buffer {
  const copy = Buffer.from(block);
  copy.fill(0x20, 148, 156);
  const sum = copy.reduce((total, byte) => total + byte, 0);
  copy.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return copy;
}

/** pax records, each prefixed with its own length. */
function paxRecords(...records: string[]): string {
  return records
    .map((record) => {
      let length = record.length + 3;
      while (`${length} ${record}\n`.length !== length) length = `${length} ${record}\n`.length;
      return `${length} ${record}\n`;
    })
    .join('');
}

function block(data: string | Buffer): Buffer {
  const bytes = Buffer.from(data);
  return Buffer.concat([bytes, Buffer.alloc((512 - (bytes.length % 512)) % 512)]);
}

describe('pax records', () => {
  test('path, linkpath and size records override the header', () => {
    const records = paxRecords('path=pax/name.txt', 'size=5');
    const tar = Buffer.concat([withChecksum(header('PaxHeader', records.length, 'x')), block(records), withChecksum(header('short', 0, '0')), block('hello'), Buffer.alloc(1024)]);
    const [entry] = readTarEntries(bufferSource(tar), 'pax.tar');
    assert.equal(entry.name, 'pax/name.txt');
    assert.equal(entry.size, 5);
    assert.equal(tar.subarray(entry.dataOffset, entry.dataOffset + entry.size).toString(), 'hello');
  });

  test('a value may hold a newline, since the length says where the record ends', () => {
    const records = paxRecords('path=line\nbreak.txt');
    const tar = Buffer.concat([withChecksum(header('PaxHeader', records.length, 'x')), block(records), withChecksum(header('x', 0, '0')), Buffer.alloc(1024)]);
    assert.equal([...readTarEntries(bufferSource(tar), 'pax.tar')][0].name, 'line\nbreak.txt');
  });
});

describe('broken archives: one ContentError line naming the archive', () => {
  const oneLine = (pattern: RegExp) => (error: unknown) => error instanceof ContentError && !error.message.includes('\n') && pattern.test(error.message);
  const cases: [string, () => Promise<Buffer> | Buffer, RegExp][] = [
    ['cut inside a member', async () => (await gnuTar('pax')).subarray(0, 512 * 3 + 100), /^broken\.tar is truncated: the (entry|tar header) at byte \d+ (runs past the end of the archive|is cut short)\.$/],
    ['cut inside a header', async () => (await gnuTar('gnu')).subarray(0, 700), /^broken\.tar is truncated/],
    [
      'a header whose checksum fails',
      async () => {
        const tar = Buffer.from(await gnuTar('ustar').catch(() => gnuTar('gnu')));
        tar[10] ^= 0xff;
        return tar;
      },
      /^broken\.tar is not a valid tar archive: the header at byte 0 fails its checksum\.$/,
    ],
    ['a size that is not octal', () => Buffer.concat([withChecksum(Buffer.from(header('a', 0, '0')).fill(0x39, 124, 130)), Buffer.alloc(1024)]), /the header at byte 0 has an invalid size/],
    [
      'a pax record whose length lies',
      () => {
        const records = '99 path=x\n';
        return Buffer.concat([withChecksum(header('PaxHeader', records.length, 'x')), block(records), withChecksum(header('x', 0, '0')), Buffer.alloc(1024)]);
      },
      /a pax extended header is malformed/,
    ],
    ['not a tar at all', () => Buffer.from('{"this": "is JSON"}'.padEnd(2048, ' ')), /fails its checksum/],
  ];
  for (const [name, make, pattern] of cases) {
    test(name, async () => {
      const tar = await make();
      assert.throws(() => [...readTarEntries(bufferSource(tar), 'broken.tar')], oneLine(pattern));
    });
  }
});

describe('writing', () => {
  test('names past ustar limits survive: a prefix split, then a pax path record; GNU tar and the reader agree', async () => {
    const split = `web/${'a'.repeat(90)}/${'b'.repeat(90)}.yaml`;
    const pax = `web/${'c'.repeat(120)}${'d'.repeat(120)}.yaml`;
    const file = (name: string, text: string) => ({ header: { name, size: text.length, mode: 0o644, uid: 0, gid: 0, mtime: 0 }, data: Buffer.from(text) });
    const tar = writeTar([file(split, 'one'), file(pax, 'two')]);
    assert.deepEqual(
      [...readTarEntries(bufferSource(tar), 'written.tar')].map((entry) => [entry.name, tar.subarray(entry.dataOffset, entry.dataOffset + entry.size).toString()]),
      [
        [split, 'one'],
        [pax, 'two'],
      ],
    );
    const path = join(work, 'written.tar');
    await writeFile(path, tar);
    assert.deepEqual((await runTool('tar', ['-tf', path])).stdout.trim().split('\n'), [split, pax]);
  });

  test('folders, symbolic and hard links, a long link target and a large owner: GNU tar lists what the header says', async () => {
    const target = `../${'t'.repeat(120)}`;
    const header = (name: string, type: 'file' | 'directory' | 'symlink' | 'hardlink', extra: Partial<{ linkName: string; uid: number; size: number }> = {}) =>
      tarHeader({ name, type, mode: type === 'symlink' ? 0o777 : 0o4755, uid: 0, gid: 50, size: 0, mtime: 0, ...extra });
    const content = Buffer.from('payload');
    const tar = Buffer.concat([
      header('app/', 'directory'),
      header('app/bin', 'file', { size: content.length, uid: 3_000_000 }),
      content,
      tarPadding(content.length),
      header('app/same', 'hardlink', { linkName: 'app/bin' }),
      header('app/far', 'symlink', { linkName: target }),
      TAR_END,
    ]);
    const path = join(work, 'typed.tar');
    await writeFile(path, tar);
    const listing = (await runTool('tar', ['--numeric-owner', '-tvf', path])).stdout.trim().split('\n');
    assert.match(listing[0], /^drwsr-xr-x 0\/50 +0 .* app\/$/);
    assert.match(listing[1], /^-rwsr-xr-x 3000000\/50 +7 .* app\/bin$/);
    assert.match(listing[2], /^hrwsr-xr-x 0\/50 +0 .* app\/same link to app\/bin$/);
    assert.ok(listing[3].startsWith('lrwxrwxrwx 0/50') && listing[3].endsWith(`app/far -> ${target}`), listing[3]);
    assert.deepEqual(
      [...readTarEntries(bufferSource(tar), 'typed.tar')].map((entry) => [entry.name, entry.type, entry.uid, entry.linkName]),
      [
        ['app/', 'directory', 0, ''],
        ['app/bin', 'file', 3_000_000, ''],
        ['app/same', 'hardlink', 0, 'app/bin'],
        ['app/far', 'symlink', 0, target],
      ],
    );
  });
});
