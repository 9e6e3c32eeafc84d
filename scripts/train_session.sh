#!/usr/bin/env bash
# One training session of the default model, unattended: a long stage, a low-learning-rate stage,
# export (raw or moving average, by validation) with Kodak figures for the model card, then the
# full evaluation (benchmarks/results). Resumes the local checkpoint when the machine still has
# it, else starts from the shipped weights with a fresh optimizer (a checkerboard model without
# shipped weights of its own warm-starts from the shipped hyperprior).
#
#   nohup scripts/train_session.sh 1h50m 25m > runs_session.log 2>&1 &
#
# Budgets are wall-clock; export + evaluation take ~10 more minutes, plus ~8 on a machine whose
# baseline cache (.cache/eval) is empty.
set -euo pipefail
cd "$(dirname "$0")/.."
long=${1:?usage: train_session.sh LONG_BUDGET LOW_LR_BUDGET [MODEL]}
low=${2:?usage: train_session.sh LONG_BUDGET LOW_LR_BUDGET [MODEL]}
model=${3:-checkerboard}
train=(.venv/bin/nicodec train --config "configs/$model.toml" --threads 2 --no-progress)

if [[ -f "runs/$model/checkpoint.pt" ]]; then
  start=(--resume)
elif [[ -f "src/nicodec/weights/$model.safetensors" ]]; then
  start=(--init "src/nicodec/weights/$model.safetensors")
else
  start=(--init src/nicodec/weights/hyperprior.safetensors)
fi
echo "$(date -u +%H:%M) $model: long stage ($long)"
"${train[@]}" "${start[@]}" --warmup-steps 100 --time-budget "$long"
echo "$(date -u +%H:%M) low-lr stage ($low)"
"${train[@]}" --resume --batch 16 --lr 3e-5 --warmup-steps 0 --time-budget "$low"
echo "$(date -u +%H:%M) export"
.venv/bin/nicodec export "runs/$model/checkpoint.pt" --figures ../shared/data/kodak
echo "$(date -u +%H:%M) evaluation"
.venv/bin/nicodec eval ../shared/data/kodak --threads 2 --quiet
echo "$(date -u +%H:%M) done"
