// Stands in for wit-imports.js while the build reads a module's flow name
// and schema in Node: any call to the host there is a mistake.
const away = (what) => () => {
  throw new Error(`${what} is only available inside a weft run (the module called it while being built)`);
};
export const log = { emit: away('log') };
export const context = { current: away('context') };
export const tasks = { begin: away('tasks'), end: away('tasks'), call: away('tasks'), submit: away('tasks') };
