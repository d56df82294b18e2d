// The HTTP API the fetch-js example reads: GET /users on 127.0.0.1.
// Usage: node serve.mjs [PORT] (default 47001). Stops on SIGTERM or Ctrl-C.
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 47001);
const users = [{ name: 'Ada' }, { name: 'Grace' }, { name: 'Margaret' }];
const server = createServer((request, response) => {
  if (request.url.startsWith('/users')) {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify(users));
  } else {
    response.writeHead(404);
    response.end();
  }
});
server.listen(port, '127.0.0.1', () => console.error(`serving users on http://localhost:${port}/users`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
