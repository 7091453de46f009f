#!/usr/bin/env bash
# Packs what a GPU machine without Node.js or a registry needs to run this checkout's tests and benches:
# .carry/node.xz (this machine's node, stripped) and .carry/node_modules.tar.xz (without typescript and the
# linters, which are only needed here: dist/ is compiled here and carried) and .carry/addon.xz (the native addon:
# 18 MB as built, 3.4 MB compressed, so that data still fits in the 64 MiB the tree may carry). Used with the
# device `run` tool: carry [".carry", "dist"], command "bash scripts/device-unpack.sh && ...".
# `bash scripts/device-pack.sh --runtime` packs a node_modules without the test runner (see below).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .carry
if [ ! -s .carry/node.xz ] || [ "$(node --version)" != "$(cat .carry/node.version 2>/dev/null)" ]; then
  cp "$(command -v node)" .carry/node && strip .carry/node && xz -9 -T0 -f .carry/node
  node --version > .carry/node.version
fi
# --runtime: only the packages the CLIs and pipelines load (no vitest): 2-3 MB instead of 12, for runs whose
# data need the room (pipelines/h200-long.sh)
mode=${1:-tests}
lock_sum="$(sha1sum package-lock.json | cut -c1-12) $mode"
if [ ! -s .carry/node_modules.tar.xz ] || [ "$lock_sum" != "$(cat .carry/node_modules.sum 2>/dev/null)" ]; then
  if [ "$mode" = --runtime ]; then
    npm ls --omit=dev --parseable --all | sed "s#^$PWD/##" | grep '^node_modules/' | grep -v '^node_modules/.*/node_modules/' |
      tar -cf - -T - | xz -6 -T0 > .carry/node_modules.tar.xz
  else
    tar --exclude='node_modules/typescript' --exclude='node_modules/.cache' --exclude='node_modules/prettier' \
      --exclude='node_modules/eslint' --exclude='node_modules/@eslint' --exclude='node_modules/@typescript-eslint' \
      --exclude='node_modules/typescript-eslint' -cf - node_modules | xz -6 -T0 > .carry/node_modules.tar.xz
  fi
  echo "$lock_sum" > .carry/node_modules.sum
fi
xz -6 -T0 -c build/Release/mamba_native.node > .carry/addon.xz
npx tsc -p tsconfig.json
du -sh .carry/* dist | sed 's/^/device-pack: /'
