// Write weft flows and tasks in JavaScript.
//
//   import { flow, task, log } from 'weft';
//
//   const extract = task('extract', { retries: 3, retryDelay: ['1s', '10s'] }, (count) =>
//     Array.from({ length: count }, (_, i) => i + 1));
//
//   flow('etl-js', { parameters: { count: { type: 'integer', default: 3 } } }, async ({ count }) => {
//     const data = (await extract(count)).map((x) => x * 10);
//     log.info(`Here's your data: ${JSON.stringify(data)}`, { rows: data.length });
//     return data;
//   });
//
// Build it with `node guest-sdk/js/build.mjs etl.js -o etl.wasm` and run it
// with `weft run etl.wasm -p count=4`. Numbers stay plain JavaScript
// numbers: the SDK converts what the WIT contract types as u64 (BigInt in
// componentize-js) itself.

import * as wit from 'weft-wit-imports';

const registry = { flow: null, taskComponent: null };

/** An error with an explicit retry decision: `WeftError.fatal(msg)` is
 * never retried; any other error is. */
export class WeftError extends Error {
  constructor(message, { retryable = true } = {}) {
    super(message);
    this.name = 'WeftError';
    this.retryable = retryable;
  }
  static fatal(message) {
    return new WeftError(message, { retryable: false });
  }
}

/** A task component's error, as the host returned it to the flow. */
export class TaskError extends WeftError {
  constructor(message, retryable) {
    super(message, { retryable });
    this.name = 'TaskError';
  }
}

function toWitError(error) {
  if (error instanceof WeftError) {
    return { message: error.message, retryable: error.retryable };
  }
  if (error instanceof Error) {
    return { message: `${error.name}: ${error.message}`, retryable: true };
  }
  return { message: String(error), retryable: true };
}

function encode(value, what) {
  const text = JSON.stringify(value === undefined ? null : value);
  if (text === undefined) {
    throw WeftError.fatal(`${what} cannot be written as JSON`);
  }
  return text;
}

const UNITS = { ms: 1, s: 1000, m: 60000, h: 3600000 };

/** Milliseconds from a number of seconds or a text such as `500ms`, `10s`, `5m`. */
export function milliseconds(value) {
  if (typeof value === 'number') return Math.round(value * 1000);
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(String(value));
  if (!match) throw WeftError.fatal(`invalid duration ${JSON.stringify(value)}: write a number of seconds or 500ms, 10s, 5m, 1h`);
  return Math.round(Number(match[1]) * UNITS[match[2] ?? 's']);
}

function fields(object) {
  return Object.entries(object ?? {}).map(([key, value]) => ({
    key,
    value: typeof value === 'string' ? value : JSON.stringify(value),
  }));
}

/** Logging to the run's log: `log.info('loaded', { rows: 3 })`. */
export const log = Object.fromEntries(
  ['trace', 'debug', 'info', 'warn', 'error'].map((level) => [
    level,
    (message, extra) => wit.log.emit(level, String(message), fields(extra)),
  ]),
);

/** The current run: flowRunId, flowName, deploymentName, attempt, taskRunId. */
export function context() {
  return wit.context.current();
}

/**
 * Marks the flow of a component. `options.parameters` describes each
 * parameter as a JSON Schema (`{ count: { type: 'integer', default: 3 } }`);
 * `options.required` lists those without a default that must be given.
 * weft checks parameters against it before anything runs. `fn` gets the
 * parameters object (defaults filled in) and may be async.
 */
export function flow(name, options, fn) {
  if (typeof options === 'function') [options, fn] = [{}, options];
  if (registry.flow) throw new Error(`a component has one flow: \`${registry.flow.name}\` is defined already`);
  const properties = options.parameters ?? {};
  const schema = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: name,
    type: 'object',
    properties,
    additionalProperties: false,
  };
  if (options.description) schema.description = options.description;
  const required = options.required ?? Object.keys(properties).filter((k) => !('default' in properties[k]));
  if (required.length) schema.required = required;
  registry.flow = { name, schema, fn };
  return fn;
}

/** Marks the entry point of a task component: `fn` gets the input (any
 * JSON value) and may be async. */
export function taskComponent(fn) {
  registry.taskComponent = { fn };
  return fn;
}

/**
 * The waits (ms) before each of `retries` retries under exponential backoff
 * `{ initial, factor = 2, max = '10m', jitter = 0.2 }`: retry n waits
 * `initial * factor ** (n - 1)`, at most `max`, varied at random by up to
 * ±`jitter` of itself. Drawn afresh for each call.
 */
export function backoffDelays(retries, { initial, factor = 2, max = '10m', jitter = 0.2 }) {
  if (initial === undefined) throw WeftError.fatal('retryBackoff needs `initial`, the first wait: { initial: "1s" }');
  if (!(factor >= 1)) throw WeftError.fatal(`backoff factor ${factor} must be at least 1`);
  if (!(jitter >= 0 && jitter <= 1)) throw WeftError.fatal(`backoff jitter ${jitter} must be between 0 and 1, such as 0.2`);
  const [first, longest] = [milliseconds(initial), milliseconds(max)];
  return Array.from({ length: retries }, (_, n) => {
    const base = Math.min(first * factor ** n, longest);
    return Math.max(0, Math.floor(base * (1 + jitter * (2 * Math.random() - 1))));
  });
}

/**
 * Wraps a function as a task: each call is a task run the host records,
 * retries (`retries`, `retryDelay`: one wait or a list, the last repeating;
 * or `retryBackoff: { initial: '1s', factor: 2, max: '10m', jitter: 0.2 }`)
 * and caches (`cacheKey`: a string or a function of the arguments;
 * `cacheExpiration`, a duration such as '1h', bounds how long a cached
 * result is reused, forever without it).
 * `timeout` ends the flow run when an attempt runs longer. The wrapped
 * function returns a promise.
 */
export function task(name, options, fn) {
  if (typeof options === 'function') [options, fn] = [{}, options];
  if (options.retryDelay !== undefined && options.retryBackoff !== undefined) {
    throw WeftError.fatal('a task has either `retryDelay` (a wait or a list of waits) or `retryBackoff`, not both');
  }
  const delays = options.retryDelay === undefined ? [] : [].concat(options.retryDelay);
  const fixedDelaysMs = delays.map((d) => BigInt(milliseconds(d)));
  const timeoutMs = options.timeout === undefined ? undefined : BigInt(milliseconds(options.timeout));
  if (options.cacheExpiration !== undefined && options.cacheKey === undefined) {
    throw WeftError.fatal('`cacheExpiration` needs a `cacheKey`: the results it expires are the ones cached under that key');
  }
  const cacheExpirationMs =
    options.cacheExpiration === undefined ? undefined : BigInt(milliseconds(options.cacheExpiration));
  return async (...args) => {
    const key = typeof options.cacheKey === 'function' ? options.cacheKey(...args) : options.cacheKey;
    const retryDelaysMs = options.retryBackoff === undefined
      ? fixedDelaysMs
      : backoffDelays(options.retries ?? 0, options.retryBackoff).map((ms) => BigInt(ms));
    const outcome = wit.tasks.begin(name, {
      retries: options.retries ?? 0,
      retryDelaysMs,
      timeoutMs,
      cacheKey: key,
      cacheExpirationMs,
    });
    if (outcome.tag === 'cached') return JSON.parse(outcome.val);
    const taskRunId = outcome.val;
    for (;;) {
      let failure;
      let value;
      let report;
      try {
        value = await fn(...args);
        report = { tag: 'ok', val: encode(value, `the result of task \`${name}\``) };
      } catch (error) {
        failure = error;
        report = { tag: 'err', val: toWitError(error) };
      }
      if (wit.tasks.end(taskRunId, report) === 'retry') continue;
      if (failure !== undefined) throw failure;
      return value;
    }
  };
}

function taskFailed(error) {
  const payload = error?.payload ?? error;
  return new TaskError(payload?.message ?? String(payload), payload?.retryable ?? false);
}

/** Runs the task component registered as `name` with `input` and returns
 * its result; throws a `TaskError` with the task's error. */
export function callTask(name, input = null) {
  try {
    return JSON.parse(wit.tasks.call(name, JSON.stringify(input)));
  } catch (error) {
    throw taskFailed(error);
  }
}

/** Starts the task component registered as `name` without waiting;
 * `wait()` on the result returns its outcome. Several run at once. */
export function submitTask(name, input = null) {
  let handle;
  try {
    handle = wit.tasks.submit(name, JSON.stringify(input));
  } catch (error) {
    throw taskFailed(error);
  }
  return {
    name,
    wait() {
      try {
        return JSON.parse(handle.wait());
      } catch (error) {
        throw taskFailed(error);
      }
    },
  };
}

async function respond(call) {
  try {
    return encode(await call(), 'the result');
  } catch (error) {
    throw toWitError(error);
  }
}

/** The `flow-entry` export; the build exports it from the component. */
export const flowEntry = {
  async run(parameters) {
    const { fn, schema } = registry.flow;
    const given = JSON.parse(parameters);
    const defaults = Object.fromEntries(
      Object.entries(schema.properties)
        .filter(([, s]) => 'default' in s)
        .map(([k, s]) => [k, s.default]),
    );
    return respond(() => fn({ ...defaults, ...given }));
  },
};

/** The `task-entry` export; the build exports it from the component. */
export const taskEntry = {
  async run(input) {
    return respond(() => registry.taskComponent.fn(JSON.parse(input)));
  },
};

/** What the build reads: the flow's name and schema, or that the module is
 * a task component. */
export function described() {
  if (registry.flow) return { world: 'flow', name: registry.flow.name, schema: registry.flow.schema };
  if (registry.taskComponent) return { world: 'task' };
  return null;
}
