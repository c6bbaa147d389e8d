#!/bin/sh
# Does --adversarial help? The compact CNN, same data, seed and budget, with and without FGSM neighbours in training
# (6,000 FERPlus Train faces x 4 epochs; test on the 3,371 FERPlus test faces; FGSM accuracy at eps 0.02).
set -e
for w in 0 0.5; do
  fer-edge train --backbone compact --chain ferplus --limit 6000 --epochs 4 --adversarial $w --adv-epsilon 0.02 \
    --out runs/adv/w$w
done
