"""Data-parallel pretraining: the same ``fit`` on many processes, GPUs or machines.

**The idea.** Launched by ``torchrun``, this script starts one process per GPU (or per
group of CPU cores), and the same ``SimCLRPretrainer().fit(X)`` that runs on a laptop
trains one model on all of them with PyTorch's DistributedDataParallel. Nothing in the
script is distributed: skssl sees torchrun's environment, joins the process group (NCCL
between GPUs, gloo between CPUs) and

- starts every rank from the same weights (rank 0's random state);
- cuts every batch of ``batch_size`` images (the *global* batch, as in one process)
  into equal shares, one per rank, which each rank reads from its own copy of ``X``: an
  array, or a memmap that every rank opens (nothing is sent between processes but
  gradients and statistics);
- averages the gradients across ranks, and normalises with the batch-norm statistics
  of the whole global batch;
- gathers SimCLR's projections from every rank, with their gradients, so that each
  view meets the negatives of the global batch;
- stops every rank at the same step (``max_time``, Ctrl-C); sums ``history_`` over the
  ranks; writes checkpoints and ``skssl.save`` files from rank 0 alone.

After ``fit``, every rank holds the same weights (the script prints a checksum per
rank); rank 0 then probes them against raw pixels and draws the training curve. With
the same ``batch_size`` and ``random_state``, the loss curve follows the one of a single
process (``tests/test_distributed.py`` checks it); what changes is the time a step
takes.

**Commands.** One machine, 2 processes (on CPUs: 2 cores, one thread each; on GPUs: one
GPU each)::

    torchrun --standalone --nproc_per_node=2 examples/distributed_fit.py
    torchrun --standalone --nproc_per_node=2 examples/distributed_fit.py --quick

Two machines with 8 GPUs each: run this on both, with ``--node_rank=0`` on the first
and ``--node_rank=1`` on the second (``host0`` is the first machine's address; every
machine must see the data, e.g. on a shared filesystem)::

    torchrun --nnodes=2 --nproc_per_node=8 --node_rank=0 \\
        --rdzv_backend=c10d --rdzv_endpoint=host0:29500 \\
        examples/distributed_fit.py --data /shared/train.npy --model /shared/simclr.skssl

Without torchrun (``python examples/distributed_fit.py``) it runs in one process.
``--data`` takes a ``.npy`` array of images (uint8 ``(n, H, W)`` or ``(n, H, W, C)``),
opened as a memmap by every rank; by default, the Fashion-MNIST training images.
"""

import argparse
import hashlib
import time

import _common as common
import numpy as np
import torch.distributed as dist

import skssl
from skssl import SimCLRPretrainer
from skssl.plotting import plot_history


def checksum(estimator):
    """A short hash of the encoder's weights: the same on every rank after fit."""
    digest = hashlib.sha256()
    for tensor in estimator.encoder_.state_dict().values():
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def main(argv=None):
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--data", help=".npy images, opened as a memmap by every rank")
    own.add_argument("--model", help="where rank 0 saves the model (skssl.save)")
    extra, rest = own.parse_known_args(argv)
    args = common.parse_args("distributed_fit", __doc__, rest)
    data = common.load_data(args.quick)
    X = np.load(extra.data, mmap_mode="r") if extra.data else data.X_train
    simclr = common.configure(SimCLRPretrainer(random_state=0), args)

    start = time.perf_counter()
    simclr.fit(X)  # under torchrun: every rank trains its share of every batch
    seconds = time.perf_counter() - start
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    last = simclr.history_[-1]
    print(f"rank {rank} of {world}: {simclr.n_iter_} epoch(s) in {seconds:.0f} s, "
          f"{last['images_per_s']:.0f} images/s in all, loss {last['loss']:.3f}, "
          f"weights {checksum(simclr)}")
    if rank != 0:  # the same model everywhere: rank 0 probes and draws it
        return
    if extra.model:
        skssl.save(simclr, extra.model)
        print(f"saved the model to {extra.model}")
    if extra.data is None:
        common.compare(data, {f"SimCLR on {world} process(es)": simclr}, args.quick)
    fig = common.new_figure(height=4, width=7)
    ax = plot_history(simclr, ax=fig.subplots())
    ax.set_title(f"SimCLRPretrainer on {world} process(es): {len(X)} images, global batch "
                 f"{simclr.batch_size}")
    common.save(fig, args.out)


if __name__ == "__main__":
    main()
