// The package's entry point: the wasm-bindgen module (`--target web`) initialised once, in Node
// from the .wasm file's bytes, in a browser (or Deno, a worker) from its URL.
import init, * as sdk from "./verisim_client.js";

let ready = null;

/** Loads and instantiates the wasm module (idempotent). Call and await before anything else.
 *  `source` (optional): the .wasm as a URL, Response, BufferSource or WebAssembly.Module. */
export function load(source) {
  if (ready === null) {
    ready = (async () => {
      let input = source;
      if (input === undefined) {
        const url = new URL("./verisim_client_bg.wasm", import.meta.url);
        const isNode = typeof process === "object" && process.versions != null && process.versions.node != null;
        if (isNode && url.protocol === "file:") {
          const { readFile } = await import("node:fs/promises");
          input = await readFile(url);
        } else {
          input = url;
        }
      }
      await init({ module_or_path: input });
      return sdk;
    })();
  }
  return ready;
}

export * from "./verisim_client.js";
