#!/usr/bin/env bash
# On the GPU machine: unpacks .carry/ (see device-pack.sh) and puts node on PATH for the caller via
# /usr/local/bin/node. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/local/bin/node ]; then xz -dc .carry/node.xz > /usr/local/bin/node && chmod +x /usr/local/bin/node; fi
# the device keeps ignored build outputs between calls: a kept addon from an earlier call is replaced whenever the
# carried one differs (compared by a checksum of .carry/addon.xz)
addon_sum=$(sha1sum .carry/addon.xz | cut -c1-16)
if [ ! -f build/Release/mamba_native.node ] || [ "$addon_sum" != "$(cat build/Release/.addon.sum 2>/dev/null)" ]; then
  mkdir -p build/Release && xz -dc .carry/addon.xz > build/Release/mamba_native.node && echo "$addon_sum" > build/Release/.addon.sum
fi
if [ ! -d node_modules ]; then xz -dc .carry/node_modules.tar.xz | tar -xf -; fi
echo "device-unpack: node $(node --version), $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | head -1)"
