// A static file server for the offline image build: run inside the build's network namespace
// (where only loopback exists), it serves one directory on 127.0.0.1 and prints its URL, then one
// line per request, so the test sees exactly what the build fetched.
//   node --import tsx test/agent-image/serve-files.ts <directory>
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { requestUrl, startServer } from '../env/http.js';

const root = path.resolve(process.argv[2] ?? '.');

const server = await startServer(async (req, res) => {
  const name = path.basename(decodeURIComponent(requestUrl(req).pathname));
  const file = path.join(root, name);
  const size = await stat(file).then((s) => (s.isFile() ? s.size : undefined), () => undefined);
  console.log(`${req.method ?? 'GET'} /${name} ${size === undefined ? 404 : 200}`);
  if (size === undefined) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'Content-Length': size, 'Content-Type': 'application/octet-stream' });
  createReadStream(file).pipe(res);
});
console.log(`listening ${server.url}`);
process.once('SIGTERM', () => void server.stop().then(() => process.exit(0)));
