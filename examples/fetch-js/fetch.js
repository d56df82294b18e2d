// A JavaScript flow that fetches JSON over HTTP (wasi:http, through the
// host, to the hosts its deployment grants) and summarizes it in a task.
//
// Build:  node guest-sdk/js/build.mjs examples/fetch-js/fetch.js -o fetch-js.wasm
// Serve:  node examples/fetch-js/serve.mjs 47001      (the users it fetches)
// Run:    weft deploy -f examples/fetch-js/weft.yaml && weft deployment run fetch-users --watch
import { flow, task, log, WeftError } from 'weft';

const summarize = task('summarize', { retries: 2, retryDelay: '100ms' }, (users) => ({
  count: users.length,
  names: users.map((user) => user.name),
}));

flow(
  'fetch-users',
  {
    description: 'Fetches the users from an HTTP API and summarizes them.',
    parameters: {
      url: { type: 'string', description: 'Where the users are.', default: 'http://localhost:47001/users' },
      limit: { type: 'integer', minimum: 1, description: 'How many users to keep.', default: 10 },
    },
  },
  async ({ url, limit }) => {
    log.info(`fetching ${url}`);
    const response = await fetch(url);
    if (!response.ok) {
      throw new WeftError(`GET ${url} answered ${response.status}`);
    }
    const users = (await response.json()).slice(0, limit);
    log.info('fetched', { users: users.length });
    return summarize(users);
  },
);
