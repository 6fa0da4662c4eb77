"""Data-parallel training across processes: what the one training loop needs of them.

When ``fit`` runs in processes launched by ``torchrun`` (or with ``torch.distributed``
already initialised), :func:`replicas` returns the :class:`Replicas` of the process
group and the loop (:func:`skssl.training.train_epochs`) trains with
DistributedDataParallel:

- every rank starts from the same state: rank 0's random state is broadcast before
  the modules are built (:meth:`Replicas.same_random_state`), so all ranks draw the
  same initial weights, epoch orders and method state as one process would;
- every global batch (``batch_size`` images, the batches of a single process) is cut
  into equal shares, one per rank (:meth:`Replicas.shard`), which each rank reads
  from its own copy of ``X`` (an array, or a memmap that every rank opens);
- the whole method step runs inside one DistributedDataParallel module
  (:meth:`Replicas.wrap`), so gradients are averaged across ranks whatever the step
  does; batch normalisation uses the statistics of the global batch
  (:class:`SyncBatchNorm`, also on CPUs, where torch's needs a GPU);
- contrastive losses see the embeddings of every rank, with their gradients
  (:func:`all_gather_with_grad`);
- ranks agree after every step on stopping (``max_time``, Ctrl-C) and on a non-finite
  loss, so that they stop at the same step; epoch statistics are summed over ranks.

A single process gets a :class:`Replicas` of one rank, on which all of this is the
identity: the loop runs one code path.
"""

import atexit
import contextlib
import contextvars
import multiprocessing
import os

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["Replicas", "SyncBatchNorm", "all_gather_with_grad", "is_writer", "replicas"]

# The replicas of the fit that is training in this thread, for all_gather_with_grad.
_TRAINING = contextvars.ContextVar("skssl_training_replicas", default=None)


def _launched_by_torchrun():
    # Processes started by such a process (joblib's workers in a search) inherit its
    # environment, but are not ranks.
    return (int(os.environ.get("WORLD_SIZE", "1")) > 1 and "MASTER_ADDR" in os.environ
            and multiprocessing.parent_process() is None)


def replicas():
    """The :class:`Replicas` this process trains with.

    The default process group when ``torch.distributed`` is initialised with more than
    one rank; in processes launched by ``torchrun`` (``WORLD_SIZE`` > 1), a process
    group is first initialised: NCCL for CUDA tensors (each process on the GPU
    ``LOCAL_RANK``) and gloo for CPU tensors. Otherwise one rank, also in the processes
    that a rank starts (joblib's workers inherit torchrun's environment).

    Returns
    -------
    replicas : Replicas
        ``replicas().world_size`` is 1 in a process that trains alone.
    """
    if dist.is_available() and not dist.is_initialized() and _launched_by_torchrun():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group("cpu:gloo,cuda:nccl")
        else:
            dist.init_process_group("gloo")
        atexit.register(_destroy)
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return Replicas(dist.group.WORLD)
    return Replicas(None)


def _destroy():
    if dist.is_initialized():
        dist.destroy_process_group()


def is_writer():
    """Whether this process writes files: always, except on ranks other than 0.

    Examples
    --------
    >>> from skssl._distributed import is_writer
    >>> is_writer()
    True
    """
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


class Replicas:
    """The processes that train one model together, or one process (``group=None``).

    Parameters
    ----------
    group : torch.distributed.ProcessGroup or None

    Attributes
    ----------
    rank, world_size : int
    """

    def __init__(self, group):
        self.group = group
        self.rank = dist.get_rank(group) if group is not None else 0
        self.world_size = dist.get_world_size(group) if group is not None else 1
        self._seconds = 0.0
        if group is None:
            self._device = "cpu"
        else:  # gloo reduces CPU tensors; a group of NCCL alone, CUDA tensors
            gloo = "gloo" in str(dist.get_backend(group))
            self._device = "cpu" if gloo else f"cuda:{torch.cuda.current_device()}"

    @property
    def distributed(self):
        """Whether there is more than one rank."""
        return self.world_size > 1

    def _reduce(self, values, op, dtype=torch.float64):
        t = torch.tensor(values, dtype=dtype, device=self._device)
        dist.all_reduce(t, op=op, group=self.group)
        return t.cpu().tolist()

    def sum(self, values):
        """``values`` (floats) summed over ranks, in float64."""
        if not self.distributed:
            return list(values)
        return self._reduce(list(values), dist.ReduceOp.SUM)

    def check_same_data(self, n_samples, image_shape):
        """Raise a ValueError on every rank unless all ranks got images of the same shape."""
        if not self.distributed:
            return
        mine = [n_samples, *image_shape]
        low = self._reduce(mine, dist.ReduceOp.MIN, torch.int64)
        high = self._reduce(mine, dist.ReduceOp.MAX, torch.int64)
        if low != high:
            raise ValueError(
                f"The {self.world_size} processes got different images: shapes from "
                f"({low[0]}, {tuple(low[1:])}) to ({high[0]}, {tuple(high[1:])}) (n, (H, W, C)). "
                "Every rank must pass the same X to fit (e.g. the same memmap); each reads "
                "its own share of the rows."
            )

    def check_batch_size(self, batch_size, n_samples):
        """Raise a ValueError when a rank would get fewer than 2 images per step."""
        if self.distributed and min(batch_size, n_samples) < 2 * self.world_size:
            raise ValueError(
                f"batch_size={batch_size} with {n_samples} images is split across "
                f"{self.world_size} processes, and each needs at least 2 images per step: "
                f"use batch_size >= {2 * self.world_size} (the global batch)."
            )

    def same_random_state(self, random_state):
        """Give ``random_state`` (a RandomState, set in place) rank 0's state."""
        if not self.distributed:
            return random_state
        _, keys, position, has_gauss, gauss = random_state.get_state()
        t = torch.tensor([*keys.astype(np.int64), position, has_gauss], device=self._device)
        g = torch.tensor([gauss], dtype=torch.float64, device=self._device)
        dist.broadcast(t, 0, group=self.group)
        dist.broadcast(g, 0, group=self.group)
        t = t.cpu().numpy()
        random_state.set_state(("MT19937", t[:-2].astype(np.uint32), int(t[-2]), int(t[-1]),
                                float(g.item())))
        return random_state

    def shard(self, rows):
        """This rank's share of a global batch of ``rows``, sorted.

        The batch is cycled up to a multiple of the number of ranks (at most
        ``world_size - 1`` images twice), so that every rank gets as many images: the
        mean of the ranks' losses is then the loss of the global batch.
        """
        if self.distributed:
            rows = np.resize(rows, len(rows) + (-len(rows) % self.world_size))
            rows = np.array_split(rows, self.world_size)[self.rank]
        return np.sort(rows)

    def generator_seed(self, seed, n_iter, step):
        """The seed of a rank's pretext generator for a call, or None to keep it.

        Rank 0 keeps its generator (a single process's); the others draw other
        pretext randomness (other crops, other corruptions), seeded from the fit's seed,
        the rank and where the fit stands.
        """
        if self.rank == 0:
            return None
        return int(np.random.SeedSequence([seed, self.rank, n_iter, step]).generate_state(1)[0])

    def all_finite(self, value):
        """Whether the loss is finite on every rank."""
        if not self.distributed:
            return bool(np.isfinite(value))
        return self._reduce([float(not np.isfinite(value))], dist.ReduceOp.MAX)[0] == 0

    def agree_to_stop(self, out_of_time, interrupted, seconds):
        """``(out_of_time, interrupted)`` of any rank, so that all stop at the same step;
        the slowest rank's ``seconds`` become :meth:`seconds` for the schedule."""
        if not self.distributed:
            return out_of_time, interrupted
        out_of_time, interrupted, self._seconds = self._reduce(
            [float(out_of_time), float(interrupted), seconds], dist.ReduceOp.MAX)
        return bool(out_of_time), bool(interrupted)

    def seconds(self, seconds):
        """Seconds spent, for the learning-rate schedule: the same on every rank."""
        return self._seconds if self.distributed else seconds

    def start(self, seconds):
        """Start a call to fit that has spent ``seconds`` already."""
        self._seconds = seconds

    def sum_stats(self, stats, seconds):
        """Epoch statistics summed over ranks, and the mean of their ``seconds``."""
        if not self.distributed:
            return stats, seconds
        keys = sorted(stats)
        totals = self._reduce([float(stats[k]) for k in keys] + [seconds], dist.ReduceOp.SUM)
        summed = {k: (v if k == "loss" else round(v))
                  for k, v in zip(keys, totals[:-1], strict=True)}
        return summed, totals[-1] / self.world_size

    @contextlib.contextmanager
    def wrap(self, estimator, net):
        """The step of the training loop: ``step(x, generator) -> (loss, record)``.

        In one process, the estimator's ``_train_step`` on ``net``. Across ranks, the
        same inside DistributedDataParallel, with :class:`SyncBatchNorm` in place of the
        batch normalisations of ``net`` (put back at exit: the parameters and buffers
        are shared, so ``net`` keeps what was trained).
        """
        if not self.distributed:
            yield lambda x, generator: estimator._train_step(net, x, generator)
            return
        swapped = SyncBatchNorm.convert(net, self.group)
        device = next(net.parameters()).device
        step = nn.parallel.DistributedDataParallel(
            _Step(estimator, net),
            device_ids=[device.index] if device.type == "cuda" else None,
            process_group=self.group,
            # the parameters a step uses are the same at every step; those it never
            # uses (a ViT's class token under MAE) are found at the first one
            static_graph=True,
        )
        token = _TRAINING.set(self)
        try:
            yield step
        finally:
            _TRAINING.reset(token)
            SyncBatchNorm.revert(swapped)


class _Step(nn.Module):
    """A method's whole training step as one module, for DistributedDataParallel."""

    def __init__(self, estimator, net):
        super().__init__()
        self.net = net
        self._estimator = [estimator]  # a list: not a submodule, not in the state dict

    def forward(self, x, generator):
        return self._estimator[0]._train_step(self.net, x, generator)


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation with the statistics of the global batch, on any device.

    In training, each rank's per-channel sums, sums of squares and counts are summed
    over the ranks (an all-reduce that gradients flow back through), so every rank
    normalises with the mean and variance of the whole global batch, as one process
    would. torch's ``nn.SyncBatchNorm`` does this on GPUs only; this one also runs
    with gloo on CPUs. In eval mode it is an ordinary batch normalisation.

    Parameters
    ----------
    num_features, eps, momentum, affine, track_running_stats
        As :class:`torch.nn.BatchNorm2d`.
    group : torch.distributed.ProcessGroup, default=None
        The ranks to synchronise; None: the default group.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, group=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.group = group

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        y, mean, var, n = _SyncBatchNormFunction.apply(x, self.weight, self.bias, self.eps,
                                                       self.group or dist.group.WORLD)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                            else self.momentum)
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                unbiased = var * n / (n - 1).clamp(min=1)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        return y

    @classmethod
    def convert(cls, module, group=None):
        """Replace every batch normalisation inside ``module`` by a synchronised one.

        The new modules share the parameters and buffers of the old ones, under the same
        names (state dicts and optimisers do not see a difference).

        Returns
        -------
        swapped : list of (parent, name, original)
            For :meth:`revert`.
        """
        swapped = []
        for parent in list(module.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, _BatchNorm) and not isinstance(child, cls):
                    sync = cls(child.num_features, child.eps, child.momentum, child.affine,
                               child.track_running_stats, group)
                    for key in ("weight", "bias"):
                        setattr(sync, key, getattr(child, key))
                    for key in ("running_mean", "running_var", "num_batches_tracked"):
                        sync._buffers[key] = child._buffers.get(key)
                    sync.train(child.training)
                    setattr(parent, name, sync)
                    swapped.append((parent, name, child))
        return swapped

    @staticmethod
    def revert(swapped):
        """Put back the batch normalisations that :meth:`convert` replaced."""
        for parent, name, original in swapped:
            original.train(getattr(parent, name).training)
            setattr(parent, name, original)


class _SyncBatchNormFunction(torch.autograd.Function):
    """Batch normalisation with statistics summed over the ranks, forward and backward.

    Built on torch's fused kernels (on a CPU, a composite of elementwise operations ran
    the ``cnn`` encoder's step 1.5x slower). Forward: each rank's per-channel mean and
    variance (``native_batch_norm``), summed over the ranks with the counts (one
    all-reduce), then the normalisation kernel with those statistics. Backward:
    ``native_batch_norm_backward`` with the global statistics gives this rank's
    gradients, whose input gradient uses means over this rank's rows; the sums of
    ``dy`` and ``dy * x_hat`` over all ranks (one all-reduce, as torch's
    ``SyncBatchNorm`` does) correct it by a per-channel affine function of ``x``. The
    gradients of ``weight`` and ``bias`` are this rank's own, which
    DistributedDataParallel then averages.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps, group):
        C = x.shape[1]
        xf = x.float()
        _, mean, invstd = torch.ops.aten.native_batch_norm(xf, None, None, None, None, True,
                                                          0.0, eps)
        local = xf.numel() // C
        var = invstd.pow(-2) - eps
        stats = torch.cat([mean * local, (var + mean * mean) * local, mean.new_tensor([local])])
        dist.all_reduce(stats, group=group)
        n = stats[-1]
        mean = stats[:C] / n
        var = (stats[C : 2 * C] / n - mean * mean).clamp_(min=0)
        y = torch.nn.functional.batch_norm(xf, mean, var, weight, bias, False, 0.0, eps)
        ctx.save_for_backward(xf, weight, mean, torch.rsqrt(var + eps))
        ctx.group, ctx.n, ctx.local, ctx.eps, ctx.dtype = group, n, local, eps, x.dtype
        ctx.mark_non_differentiable(mean, var, n)
        return y.to(x.dtype), mean, var, n

    @staticmethod
    def backward(ctx, grad_y, *_):
        xf, weight, mean, invstd = ctx.saved_tensors
        C = xf.shape[1]
        shape = [1, C] + [1] * (xf.dim() - 2)
        w = weight.float() if weight is not None else torch.ones_like(mean)
        grad_x, sum_dy_x_hat, sum_dy = torch.ops.aten.native_batch_norm_backward(
            grad_y.float(), xf, w, None, None, mean, invstd, True, ctx.eps, [True, True, True])
        if ctx.needs_input_grad[0]:
            totals = torch.cat([sum_dy, sum_dy_x_hat])
            dist.all_reduce(totals, group=ctx.group)
            # grad_x used this rank's means of dy and dy * x_hat: put the global ones in
            d1 = sum_dy / ctx.local - totals[:C] / ctx.n
            d2 = sum_dy_x_hat / ctx.local - totals[C:] / ctx.n
            k = w * invstd
            beta = k * d2 * invstd
            alpha = k * d1 - beta * mean
            grad_x = torch.addcmul(grad_x + alpha.view(shape), xf, beta.view(shape))
            grad_x = grad_x.to(ctx.dtype)
        else:
            grad_x = None
        grad_weight = grad_bias = None
        if weight is not None and ctx.needs_input_grad[1]:
            grad_weight = sum_dy_x_hat.to(weight.dtype)
        if weight is not None and ctx.needs_input_grad[2]:
            grad_bias = sum_dy.to(weight.dtype)
        return grad_x, grad_weight, grad_bias, None, None


class _AllGather(torch.autograd.Function):
    """All ranks' tensors concatenated in rank order; the gradient flows back to each."""

    @staticmethod
    def forward(ctx, z, group):
        ctx.group = group
        ctx.rank, ctx.n = dist.get_rank(group), len(z)
        parts = [torch.empty_like(z) for _ in range(dist.get_world_size(group))]
        dist.all_gather(parts, z.contiguous(), group=group)
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad):
        # Every rank's loss depends on every rank's rows: sum the gradients over ranks
        # (an all-reduce, which every backend has), keep this rank's rows.
        grad = grad.contiguous()
        dist.all_reduce(grad, group=ctx.group)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n], None


def all_gather_with_grad(z):
    """The rows of ``z`` of every rank training together, in rank order, with gradients.

    Within a data-parallel fit, each rank's ``(B, D)`` tensor becomes the
    ``(world_size * B, D)`` concatenation of all ranks' (each has ``B`` rows, see
    :meth:`Replicas.shard`); gradients flow back to the rank that made each row. Outside
    one (a single process, or :meth:`~skssl.base.BasePretrainer.score`), ``z`` itself.
    This is the ``gather`` of :class:`skssl.losses.NTXentLoss`.

    Parameters
    ----------
    z : torch.Tensor of shape (B, D)

    Returns
    -------
    z : torch.Tensor of shape (world_size * B, D)

    Examples
    --------
    >>> import torch
    >>> from skssl._distributed import all_gather_with_grad
    >>> all_gather_with_grad(torch.ones(2, 3)).shape  # one process
    torch.Size([2, 3])
    """
    training = _TRAINING.get()
    if training is None:
        return z
    return _AllGather.apply(z, training.group)
