// A JavaScript task component: writes a text as a title.
import { taskComponent, log, WeftError } from 'weft';

taskComponent(({ text }) => {
  if (typeof text !== 'string') throw WeftError.fatal('`text` must be a string');
  log.info('title-casing', { length: text.length });
  return text.replace(/\b\w/g, (letter) => letter.toUpperCase());
});
