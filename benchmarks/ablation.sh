#!/bin/bash
# Configuration ablations at the VALIDATION stage (issue 12): each variant of the shipped config
# (configs/quickstart.yaml with one key changed) is trained for seeds 0,1,2 on the same split and
# evaluated with `instructrec evaluate --stage valid`; benchmarks/compare_runs.py then pairs each
# variant with the shipped config seed by seed.
#
#   bash benchmarks/ablation.sh OUT [cuda|cpu] [BACKBONE_DIR]
#
# Variants: no_intent (reranker.intent_match: false), rr_head (backbone.head: rr),
# copies4 (reranker.copies: 4). All runs go in parallel (one GPU holds them all; on the 2-core
# CPU box run it overnight). The figures in docs/reranker.md came from one H200 (16 cores):
# about 55 s of training and 85 s of evaluation for all 12 runs.
set -u
OUT=${1:?usage: ablation.sh OUT [cuda|cpu] [BACKBONE_DIR]}; DEVICE=${2:-cpu}; BACKBONE=${3:-}
HERE=$(cd "$(dirname "$0")/.." && pwd)
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
variant() {  # name -> config on stdout
  local cfg=$HERE/configs/quickstart.yaml
  case $1 in
    shipped) cat "$cfg";;
    no_intent) sed 's/^  intent_match: true /  intent_match: false/' "$cfg";;
    rr_head) sed 's/^  head: linear /  head: rr     /' "$cfg";;
    copies4) sed 's/^  copies: 2 /  copies: 4 /' "$cfg";;
  esac
}
for v in shipped no_intent rr_head copies4; do
  for s in 0 1 2; do
    variant $v | sed -e "s/^  seed: 0 *$/  seed: $s/" \
      -e "s/^  options: {}/  options: {device: $DEVICE, seed: $s}/" \
      -e "s/^  - name: sasrec$/  - name: sasrec\n    options: {device: $DEVICE, seed: $s}/" \
      ${BACKBONE:+-e "s#^  backbone: null .*#  backbone: $BACKBONE#"} > "$OUT/$v-$s.yaml"
    ( $PY -m instructrec.cli train --config "$OUT/$v-$s.yaml" --out "$OUT/$v-$s" > "$OUT/$v-$s.log" 2>&1
      $PY -m instructrec.cli evaluate --model-dir "$OUT/$v-$s" --stage valid --models sasrec \
        --protocol cand10,full,search,vague,vague-para,search-para,search-hard \
        --out "$OUT/eval/$v-$s" >> "$OUT/$v-$s.log" 2>&1; echo "$v-$s rc $?" ) &
  done
done
wait
for v in no_intent rr_head copies4; do
  $PY "$HERE/benchmarks/compare_runs.py" --name "ablation_$v" --label "$v" \
    --base "$OUT"/eval/shipped-{0,1,2} --variant "$OUT"/eval/$v-{0,1,2}
done
