#!/bin/sh
# The same fine-tuning with adversarial weight 0 and 0.5 (finetune.yaml); results in runs/adv/w0, runs/adv/w0.5.
set -e
for w in 0 0.5; do
  fer-edge train --config results/train/adversarial/finetune.yaml --adversarial $w --out runs/adv/w$w
done
