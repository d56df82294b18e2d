// A JavaScript flow whose task fails three times, retried with exponential
// backoff and jitter, and then succeeds.
import { flow, task, WeftError } from 'weft';

let attempts = 0;

const flaky = task('flaky', { retries: 3, retryBackoff: { initial: '20ms', factor: 3, max: '100ms', jitter: 0.5 } }, () => {
  attempts += 1;
  if (attempts < 4) throw new WeftError(`attempt ${attempts} failed`);
  return `ok on attempt ${attempts}`;
});

flow('backoff', async () => flaky());
