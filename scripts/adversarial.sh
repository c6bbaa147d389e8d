#!/bin/sh
# Does --adversarial help? The same fine-tuning (results/train/adversarial/finetune.yaml, from step 1 of the default
# model: runs/compact) with adversarial weight 0 and 0.5; results in runs/adv/w0, runs/adv/w0.5
# (reports: results/train/adversarial/).
set -e
for w in 0 0.5; do
  fer-edge train --config results/train/adversarial/finetune.yaml --adversarial $w --out runs/adv/w$w
done
