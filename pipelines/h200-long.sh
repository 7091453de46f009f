#!/usr/bin/env bash
# The long-context experiments (issue 14) on one H200 in one sitting, from a dev checkout unpacked with
# scripts/device-unpack.sh. Data travels in .carry/data/: great-apes.maf.gz (the maffilter-examples MAF) for
# dna/apes, music/ (xz-compressed mu-law token files from `mamba-audio dataset build music --format tokens
# ...`, see pipelines/results/README.md) for music, species/ (a `mamba-dna dataset build species` folder) for
# species; instead of the MAF, great-apes-data/ (a set built here: manifest.json and the species folders, hsap/
# alone enough for dna) may travel. Runs the PARTS in order, each under its share of one wall-clock limit (a part's unused time goes to
# the next), and leaves in $OUT the log and one tarball of the results (run folders without model weights).
# Rerunning it on the same machine continues where a cut run stopped (finished lengths are kept): dna-scaling's
# default of 300 steps per length takes about 22 minutes, three or four calls (FLAGS_dna="--steps 48": one).
#   OUT=/some/dir LIMIT_S=500 PARTS=dna,music bash pipelines/h200-long.sh
#   PARTS: any of dna (dna-scaling), apes (great-apes; needs dna first), music (music-scaling), species
#   (dna-species); shares by weight: dna 45, music 45, apes 35, species 35. FLAGS_dna etc. add flags to one part
#   (e.g. FLAGS_dna="--lengths 10,20"); RUNS: where run folders go (default runs/pipelines); DATA: instead of
#   .carry/data. A check of the script itself at toy size on the CPU: FULL= DEVICE=cpu LIMIT_S=300 ...
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder for the log and results}"
LIMIT_S=${LIMIT_S:-500}
PARTS=${PARTS:-dna,music}
DEVICE=${DEVICE:-cuda}
FULL=${FULL---full}
R=${RUNS:-runs/pipelines}
D=${DATA:-.carry/data}
t0=$(date +%s)
left() { echo $((LIMIT_S - ($(date +%s) - t0))); }
declare -A weight=([dna]=45 [music]=45 [apes]=35 [species]=35)
declare -A script=([dna]=dna-scaling [music]=music-scaling [apes]=great-apes [species]=dna-species)
IFS=, read -r -a parts <<<"$PARTS"
for p in "${parts[@]}"; do
  [ -n "${weight[$p]:-}" ] || { echo "h200-long: unknown part '$p' (dna, apes, music, species)" >&2; exit 2; }
done
mkdir -p "$OUT" "$R"
{
  echo "h200-long: $(date -u +%FT%TZ), limit ${LIMIT_S} s, parts ${PARTS}, $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
  if [[ ",$PARTS," == *,dna,* || ",$PARTS," == *,apes,* ]] && [ ! -f "$R/great-apes-data/manifest.json" ]; then
    # a set built here travels smaller than the MAF (dna-scaling reads only its hsap/ folder: 6.9 MB against 13.2)
    if [ -f "$D/great-apes-data/manifest.json" ]; then
      cp -r "$D/great-apes-data" "$R/great-apes-data"
    else
      node bin/mamba-dna.js dataset build great-apes --out "$R/great-apes-data" --maf "$D/great-apes.maf.gz" --force
    fi
  fi
  if [[ ",$PARTS," == *,music,* ]] && [ ! -f "$R/music-data/music.json" ]; then
    rm -rf "$R/music-data.partial" && cp -r "$D/music" "$R/music-data.partial" &&
      find "$R/music-data.partial" -name '*.xz' -exec xz -d {} + && mv "$R/music-data.partial" "$R/music-data"
  fi
  for i in "${!parts[@]}"; do
    p=${parts[$i]}
    rest=0
    for q in "${parts[@]:$i}"; do rest=$((rest + weight[$q])); done
    share=$(( ($(left) - 10) * weight[$p] / rest ))
    extra_var="FLAGS_$p"
    case $p in
      dna) args=(--dataset "$R/great-apes-data" --out "$R/dna-scaling") ;;
      apes) args=(--dataset "$R/great-apes-data" --pretrained "$R/dna-scaling" --out "$R/great-apes") ;;
      music) args=(--dataset "$R/music-data" --out "$R/music-scaling") ;;
      species) args=(--dataset "$D/species" --out "$R/dna-species") ;;
    esac
    echo "h200-long: $(left) s left; ${script[$p]} gets ${share} s"
    # shellcheck disable=SC2086 # FULL and FLAGS_* are word lists
    timeout $((share + 30)) node "pipelines/${script[$p]}.js" $FULL --device "$DEVICE" "${args[@]}" \
      --time-limit-s "$share" ${!extra_var:-}
    echo "h200-long: ${script[$p]} exit $?, $(( $(date +%s) - t0 )) s in all"
  done
} 2>&1 | tee "$OUT/long-log.txt"
# results only: weights, optimizer state and the step folders stay behind
dirs=$(cd "$R" && ls -d dna-scaling great-apes music-scaling dna-species great-apes-data/manifest.json music-data/music.json 2>/dev/null)
tar --exclude='*.safetensors' --exclude='*.prev' --exclude='checkpoints' --exclude='best' --exclude='species-data' \
  -czf "$OUT/long-results.tar.gz" -C "$R" $dirs 2>>"$OUT/long-log.txt"
ls -la "$OUT"
