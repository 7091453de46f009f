#!/usr/bin/env bash
# The music scaling experiment in one sitting on one H200 (from a dev checkout unpacked with
# scripts/device-unpack.sh; the music subset carried as xz-compressed mu-law token files in
# .carry/data/music/, made with `mamba-audio dataset build music --format tokens ...`): decompresses it,
# runs music-scaling --full under a wall-clock limit, and leaves in $OUT the log and one tarball of the
# results (run folders without model weights, WAV continuations, spectrograms). Rerunning continues.
#   OUT=/some/dir LIMIT_S=280 bash pipelines/h200-music.sh [extra flags, e.g. --lengths 12,16,20]
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder for the log and results}"
LIMIT_S=${LIMIT_S:-280}
DEVICE=${DEVICE:-cuda}
FULL=${FULL---full}
SRC=${MUSIC:-.carry/data/music}
R=${RUNS:-runs/pipelines}
t0=$(date +%s)
mkdir -p "$OUT" "$R"
{
  echo "h200-music: $(date -u +%FT%TZ), limit ${LIMIT_S} s, $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
  if [ ! -f "$R/music-data/music.json" ]; then
    rm -rf "$R/music-data.partial" && cp -r "$SRC" "$R/music-data.partial" && find "$R/music-data.partial" -name '*.xz' -exec xz -d {} + && mv "$R/music-data.partial" "$R/music-data"
  fi
  du -sh "$R/music-data"/*/ | sed 's/^/h200-music: /'
  left=$(( LIMIT_S - ($(date +%s) - t0) - 10 ))
  timeout $((left + 10)) node pipelines/music-scaling.js $FULL --device "$DEVICE" --out "$R/music-scaling" --dataset "$R/music-data" --time-limit-s "$left" "$@"
  echo "h200-music: music-scaling exit $?, $(( $(date +%s) - t0 )) s in all"
} 2>&1 | tee "$OUT/music-log.txt"
tar --exclude='*.safetensors' --exclude='*.prev' --exclude='best' -czf "$OUT/music-results.tar.gz" -C "$R" music-scaling music-data/music.json 2>>"$OUT/music-log.txt"
ls -la "$OUT"
