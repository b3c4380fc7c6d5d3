#!/usr/bin/env bash
# Builds the wasm SDK package into client/js/pkg/: the verisim-client crate with feature `js` for
# wasm32-unknown-unknown (profile `wasm`: size-optimised), then wasm-bindgen --target web, one ES
# module that runs in browsers and in Node >= 18 (see index.mjs: the module is initialised from
# bytes in Node, from a URL in a browser).
#
# Installs what is missing: the wasm32 target (rustup) and wasm-bindgen-cli pinned to the exact
# wasm-bindgen version of Cargo.lock, built with --debug (much faster to compile; it runs for a
# second) into $VERISIM_WASM_TOOLS (default: $CARGO_HOME/verisim-tools/wasm-bindgen-<version>, kept
# across clones and never clobbering another wasm-bindgen on the PATH).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

target_dir="${CARGO_TARGET_DIR:-$root/target}"

# The wasm-bindgen version the crate builds with, from Cargo.lock (the CLI must match it exactly).
version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
if [ -z "$version" ]; then
    echo "build.sh: no wasm-bindgen in Cargo.lock" >&2
    exit 1
fi

tools="${VERISIM_WASM_TOOLS:-${CARGO_HOME:-$HOME/.cargo}/verisim-tools/wasm-bindgen-$version}"

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
fi

bindgen="$tools/bin/wasm-bindgen"
if [ ! -x "$bindgen" ] || [ "$("$bindgen" --version | awk '{print $2}')" != "$version" ]; then
    echo "build.sh: installing wasm-bindgen-cli $version into $tools (once)" >&2
    cargo install wasm-bindgen-cli --version "=$version" --locked --debug --root "$tools"
fi

cargo rustc -p verisim-client --lib --crate-type cdylib --locked \
    --no-default-features --features js \
    --target wasm32-unknown-unknown --profile wasm

out="$here/pkg"
rm -rf "$out"
"$bindgen" --target web --out-dir "$out" --out-name verisim_client \
    "$target_dir/wasm32-unknown-unknown/wasm/verisim_client.wasm"
cp "$here/index.mjs" "$here/index.d.ts" "$out/"
# The same declarations as index.d.mts: what TypeScript looks for when index.mjs is imported by path.
cp "$here/index.d.ts" "$out/index.d.mts"
echo "build.sh: $(wc -c < "$out/verisim_client_bg.wasm") bytes of wasm ($(gzip -9c "$out/verisim_client_bg.wasm" | wc -c) gzipped) in $out"
