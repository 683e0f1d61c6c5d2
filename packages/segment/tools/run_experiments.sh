#!/usr/bin/env bash
# Baseline / refocused / equal-epoch control on CamVid, as reported in the README.
# Run from the repository root: bash packages/segment/tools/run_experiments.sh
# (the baseline step is skipped when runs/segment/camvid-deeplabv3/last.safetensors already holds 10 epochs).
set -euo pipefail
cd "$(dirname "$0")/../../.."  # the repository root: relative paths are relative to where nx is run
BASE=runs/segment/camvid-deeplabv3/last.safetensors
FT_EPOCHS=${FT_EPOCHS:-5}
if [ ! -f "$BASE" ]; then
  nice -n 10 npx nx run segment:train
fi
nice -n 10 npx nx run segment:train -- --from "$BASE" --refconv --epochs "$FT_EPOCHS" --lr 0.01 --warmup-epochs 0 --out runs/segment/camvid-deeplabv3-refconv
nice -n 10 npx nx run segment:train -- --from "$BASE" --epochs "$FT_EPOCHS" --lr 0.01 --warmup-epochs 0 --out runs/segment/camvid-deeplabv3-finetune
for run in camvid-deeplabv3 camvid-deeplabv3-refconv camvid-deeplabv3-finetune; do
  nice -n 10 npx nx run segment:eval -- --checkpoint "runs/segment/$run/last.safetensors" --json > "runs/segment/$run/eval.json"
done
# Refocusing with the transforms initialised to zero (starts exactly at the baseline), and a
# second seed (data order, augmentation, transform init) of the control and refocused arms.
if [ "${EXTRA:-0}" = 1 ]; then
  nice -n 10 npx nx run segment:train -- --from "$BASE" --epochs "$FT_EPOCHS" --lr 0.01 --warmup-epochs 0 --seed 1 --out runs/segment/camvid-deeplabv3-finetune-s1
  nice -n 10 npx nx run segment:train -- --from "$BASE" --refconv --epochs "$FT_EPOCHS" --lr 0.01 --warmup-epochs 0 --seed 1 --out runs/segment/camvid-deeplabv3-refconv-s1
  nice -n 10 npx nx run segment:train -- --from "$BASE" --refconv --refconv-init zero --epochs "$FT_EPOCHS" --lr 0.01 --warmup-epochs 0 --out runs/segment/camvid-deeplabv3-refconv-zero
  nice -n 10 npx nx run segment:eval -- --checkpoint runs/segment/camvid-deeplabv3-refconv-zero/last.safetensors --json > runs/segment/camvid-deeplabv3-refconv-zero/eval.json
fi
