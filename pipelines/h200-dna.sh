#!/usr/bin/env bash
# The long-context DNA experiments in one sitting on one H200 (from a dev checkout unpacked with
# scripts/device-unpack.sh; the MAF carried as .carry/data/great-apes.maf.gz): builds the great-apes set,
# runs dna-scaling --full then great-apes --full under one wall-clock limit, and leaves in $OUT the log and
# one tarball of the results (run folders without model weights). Rerunning it on the same machine
# continues where a cut run stopped (finished lengths are kept).
#   OUT=/some/dir LIMIT_S=530 bash pipelines/h200-dna.sh [extra flags for both pipelines, e.g. --lengths 10,12]
# APES=0 runs dna-scaling alone (with all the time); LM_FLAGS adds flags to dna-scaling only (e.g. --steps 128);
# LM_OUT / APES_OUT name the run folders under runs/pipelines (new names for new settings: finished lengths are kept).
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder for the log and results}"
LIMIT_S=${LIMIT_S:-530}
DEVICE=${DEVICE:-cuda}
FULL=${FULL---full}
MAF=${MAF:-.carry/data/great-apes.maf.gz}
R=${RUNS:-runs/pipelines}
APES=${APES:-1}
LM_OUT=${LM_OUT:-dna-scaling}
APES_OUT=${APES_OUT:-great-apes}
LM_FLAGS=${LM_FLAGS:-}
t0=$(date +%s)
left() { echo $((LIMIT_S - ($(date +%s) - t0))); }
mkdir -p "$OUT" "$R"
{
  echo "h200-dna: $(date -u +%FT%TZ), limit ${LIMIT_S} s, $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
  node bin/mamba-dna.js dataset list | grep great-apes
  [ -f "$R/great-apes-data/manifest.json" ] || node bin/mamba-dna.js dataset build great-apes --out "$R/great-apes-data" --maf "$MAF" --force
  # the LM sweep gets about 62% of what is left, the classifiers the rest (they need the LM models)
  if [ "$APES" = 1 ]; then lm=$(( $(left) * 62 / 100 )); else lm=$(( $(left) - 10 )); fi
  echo "h200-dna: $(left) s left; dna-scaling limit ${lm} s"
  timeout $((lm + 20)) node pipelines/dna-scaling.js $FULL --device "$DEVICE" --out "$R/$LM_OUT" --dataset "$R/great-apes-data" --time-limit-s "$lm" $LM_FLAGS "$@"
  echo "h200-dna: dna-scaling exit $?, $(left) s left"
  if [ "$APES" = 1 ]; then
    ga=$(( $(left) - 15 ))
    timeout $((ga + 10)) node pipelines/great-apes.js $FULL --device "$DEVICE" --out "$R/$APES_OUT" --dataset "$R/great-apes-data" --pretrained "$R/$LM_OUT" --time-limit-s "$ga" "$@"
    echo "h200-dna: great-apes exit $?, $(( $(date +%s) - t0 )) s in all"
  fi
} 2>&1 | tee "$OUT/dna-log.txt"
tar --exclude='*.safetensors' --exclude='*.safetensors.prev' --exclude='*.prev' --exclude='best' -czf "$OUT/dna-results.tar.gz" \
  -C "$R" $(cd "$R" && ls -d "$LM_OUT" "$APES_OUT" 2>/dev/null) great-apes-data/manifest.json 2>>"$OUT/dna-log.txt"
ls -la "$OUT"
