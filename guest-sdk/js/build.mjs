#!/usr/bin/env node
// `node build.mjs SOURCE.js -o OUT.wasm`: builds a JavaScript flow or task
// component.
//
// 1. bundles SOURCE.js with the SDK (esbuild), with the host stubbed out,
//    and imports it here to read its flow's name and parameter schema;
// 2. bundles it again for the component, exporting the SDK's entry point,
//    and runs componentize-js (its default features, `fetch` included);
// 3. for a flow, embeds the name and schema with `weft component annotate`.
//
// Tools: componentize-js and esbuild from this SDK's node_modules or
// NODE_PATH; weft from $WEFT or PATH.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const sdk = dirname(fileURLToPath(import.meta.url));

function fail(message) {
  console.error(`weft build: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const args = { source: null, output: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '-o' || argv[i] === '--output') args.output = argv[++i];
    else if (!args.source) args.source = argv[i];
    else fail(`unexpected argument ${argv[i]}`);
  }
  if (!args.source || !args.output) fail('usage: build.mjs SOURCE.js -o OUT.wasm');
  return args;
}

// A package's ES module entry, found in node_modules beside this SDK, in
// the working directory, or in a NODE_PATH folder.
async function tool(name) {
  const bases = [join(sdk, 'node_modules'), join(process.cwd(), 'node_modules')];
  bases.push(...(process.env.NODE_PATH ?? '').split(':').filter(Boolean));
  for (const base of bases) {
    const folder = join(base, name);
    if (!existsSync(join(folder, 'package.json'))) continue;
    const manifest = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8'));
    const exported = manifest.exports?.['.'] ?? manifest.exports;
    const entry =
      (typeof exported === 'string' ? exported : exported?.import ?? exported?.default) ?? manifest.main ?? 'index.js';
    return import(pathToFileURL(join(folder, entry)).href);
  }
  fail(`cannot find \`${name}\`: install it (npm install ${name}) or put its node_modules folder on NODE_PATH`);
}

function witDir() {
  for (const candidate of [join(sdk, 'wit'), resolve(sdk, '../../wit/weft-flow@0.2.0')]) {
    if (existsSync(join(candidate, 'worlds.wit'))) return candidate;
  }
  fail('cannot find the weft WIT files (wit/ beside this file, or the repository\'s wit/weft-flow@0.2.0)');
}

const args = parseArgs(process.argv.slice(2));
const source = resolve(args.source);
if (!existsSync(source)) fail(`\`${args.source}\` does not exist`);
const output = resolve(args.output);
const esbuild = await tool('esbuild');
const temp = mkdtempSync(join(tmpdir(), 'weft-build-'));
try {
  const bundle = async (entry, outfile, wit) =>
    esbuild.build({
      stdin: { contents: entry, resolveDir: dirname(source), sourcefile: 'weft-entry.js', loader: 'js' },
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      outfile,
      external: ['weft:*'],
      alias: { weft: join(sdk, 'weft.js'), 'weft-wit-imports': join(sdk, wit) },
      logLevel: 'error',
    });

  // What the module declares, read in Node with the host stubbed out.
  const probe = join(temp, 'probe.mjs');
  await bundle(`import ${JSON.stringify(source)};\nexport { described } from 'weft';\n`, probe, 'wit-stub.js');
  const described = (await import(pathToFileURL(probe).href)).described();
  if (!described) fail(`\`${args.source}\` defines no flow (weft.flow) and no task component (weft.taskComponent)`);

  const entry = described.world === 'flow' ? 'flowEntry' : 'taskEntry';
  const component = join(temp, 'component.js');
  await bundle(`import ${JSON.stringify(source)};\nexport { ${entry} } from 'weft';\n`, component, 'wit-imports.js');
  const { componentize } = await tool('@bytecodealliance/componentize-js');
  const built = await componentize({ sourcePath: component, witPath: witDir(), worldName: described.world });
  writeFileSync(output, built.component);

  if (described.world === 'flow') {
    const schema = join(temp, 'schema.json');
    writeFileSync(schema, JSON.stringify(described.schema));
    const weft = process.env.WEFT || 'weft';
    execFileSync(weft, ['component', 'annotate', output, '--flow-name', described.name, '--parameters-schema', schema], {
      stdio: 'inherit',
    });
  }
  console.error(`Built ${described.world} component \`${output}\` from ${basename(source)}`);
} catch (error) {
  fail(error.message ?? String(error));
} finally {
  rmSync(temp, { recursive: true, force: true });
}
