"""One rank of the data-parallel fits of ``test_distributed.py``, run under torchrun.

``python -m torch.distributed.run --standalone --nproc_per_node=2 distributed_worker.py
OUT X.npy`` fits, on the memmap ``X.npy``, the estimators of :data:`FITS`, and writes
what each rank ended with to ``OUT/<name>_rank<r>.npz`` (weights, buffers) and
``.json`` (loss curve, history); the fits themselves write ``OUT/<name>.skssl``
(``skssl.save``) and a checkpoint, from rank 0 only.
"""

import json
import sys
from pathlib import Path

import numpy as np

import skssl

SMALL = dict(encoder_kwargs={"channels": (4, 8)}, batch_size=32, device="cpu", random_state=0)

# name -> (estimator class, parameters): the same in the single-process reference fits
FITS = {
    # all four rotations: a batch without randomness, so two ranks compute what one
    # process does up to the float rounding of the gradient average
    "rotation": (skssl.RotationPretrainer, dict(SMALL, max_epochs=3, all_rotations=True)),
    "simclr": (skssl.SimCLRPretrainer, dict(SMALL, max_epochs=3)),
    # a time budget that ends mid-epoch: every rank must stop at the same step
    "rotation_timed": (skssl.RotationPretrainer, dict(SMALL, max_epochs=100, max_time=1.0,
                                                      lr_schedule="cosine")),
}


def main(out, path):
    import torch.distributed as dist

    X = np.load(path, mmap_mode="r")  # every rank opens the same file
    for name, (cls, params) in FITS.items():
        est = cls(**params, checkpoint=out / f"{name}.ckpt").fit(X)
        rank = dist.get_rank()
        modules = {"encoder": est.encoder_, "head": est.head_}
        np.savez(out / f"{name}_rank{rank}.npz", **{
            f"{m}.{k}": v.detach().cpu().numpy()
            for m, module in modules.items() for k, v in module.state_dict().items()
        })
        (out / f"{name}_rank{rank}.json").write_text(json.dumps(
            {"loss_curve": est.loss_curve_, "history": est.history_,
             "world_size": dist.get_world_size()}))
        skssl.save(est, out / f"{name}.skssl")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
