// Runs a wasm32-wasi module under Node's WASI: `node run_wasi.js module.wasm` runs a command
// module's _start; `node run_wasi.js module.wasm --reactor EXPORT` initializes a reactor and
// calls EXPORT, exiting with its result.
"use strict";
const fs = require("fs");
const { WASI } = require("wasi");

async function main(argv) {
  const [path, mode, exportName] = argv;
  const wasi = new WASI({ version: "preview1", args: [path], env: {}, returnOnExit: true });
  const module = await WebAssembly.compile(fs.readFileSync(path));
  const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
  if (mode === "--reactor") {
    wasi.initialize(instance);
    return instance.exports[exportName]();
  }
  return wasi.start(instance);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
