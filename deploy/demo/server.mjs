// The demo tenants' service: answers every request with which revision and instance served it,
// so a traffic split is visible from the client. /healthz is its health-check path.
import { createServer } from 'node:http';
import { hostname } from 'node:os';

const port = Number(process.env.PORT ?? 8080);
const revision = process.env.REVISION ?? 'unknown';
const instance = hostname();

const server = createServer((request, response) => {
  if (request.url === '/healthz') {
    response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return;
  }
  const body = JSON.stringify({ revision, instance, method: request.method, path: request.url, host: request.headers.host });
  response.writeHead(200, { 'content-type': 'application/json', 'x-demo-revision': revision }).end(`${body}\n`);
});

server.listen(port, () => console.log(JSON.stringify({ msg: 'demo listening', port: server.address().port, revision })));

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => server.close(() => process.exit(0)));
}
