"""Continue the default model (continue.yaml) and keep every epoch's weights in OUT/epochs/ for weight averaging.

    python results/train/compact-long/run.py [OUT]     # default runs/compact-long; rerun to resume
"""

import sys
from pathlib import Path

import keras

from fer_edge.train.chain import run_chain
from fer_edge.train.config import config_from_settings, read_config_file

HERE = Path(__file__).parent
out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/compact-long")


class KeepEpochs(keras.callbacks.Callback):
    """Save the weights after every epoch as OUT/epochs/eNN.weights.h5 (numbered across resumes)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        folder = out / "epochs"
        folder.mkdir(parents=True, exist_ok=True)
        model = getattr(self.model, "inner", self.model)
        tmp = folder / f".e{epoch + 1:02d}.weights.h5"
        model.save_weights(tmp)
        tmp.replace(folder / f"e{epoch + 1:02d}.weights.h5")


settings = read_config_file(HERE / "continue.yaml")
settings.update(out=str(out), resume=(out / "chain.json").is_file())  # --resume needs a run to continue
run_chain(config_from_settings(settings), callbacks=[KeepEpochs()])
