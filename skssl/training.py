"""The one training loop of skssl: epochs, time budget, schedule, progress, history.

Every pretrainer trains through :func:`train_epochs`. A method never changes the
loop: it says what one step computes (``BasePretrainer._train_step``), and the loop
does the rest: shuffling and batching, the learning-rate schedule, the optimiser
step, the time budget, the progress bar, Ctrl-C, checkpoints, and one ``history_``
entry per epoch.
"""

import math
import signal
import threading
import time
import warnings

import numpy as np
import torch
from tqdm.auto import tqdm

from . import persistence
from ._distributed import replicas
from ._heap import FaultWatch
from .device import memory_format

__all__ = ["make_optimizer", "scheduled_learning_rate", "split_batches", "train_epochs"]


def split_batches(order, batch_size):
    """Split ``order`` into nearly equal batches of at most ``batch_size``, none of size 1.

    A batch of one image would break batch normalisation (and has no negatives for
    contrastive or intruder tasks), so ``n`` images never leave one alone.

    Parameters
    ----------
    order : ndarray of shape (n,)
        Row indices, in the order they are visited.
    batch_size : int

    Returns
    -------
    batches : list of ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from skssl.training import split_batches
    >>> [len(b) for b in split_batches(np.arange(9), 4)]
    [3, 3, 3]
    """
    n = len(order)
    n_batches = -(-n // batch_size)
    if n >= 2 and n // n_batches < 2:
        n_batches = max(1, n // 2)
    return np.array_split(order, n_batches)


def scheduled_learning_rate(schedule, learning_rate, step, total_steps, seconds=0.0,
                            max_time=None):
    """The learning rate of a step under ``schedule``.

    ``"cosine"`` decays from ``learning_rate`` towards 0 along a half cosine
    (Loshchilov & Hutter 2017, without restarts) over ``total_steps`` steps, or over
    ``max_time`` seconds when that budget ends first; ``"constant"`` keeps it.

    Parameters
    ----------
    schedule : {"constant", "cosine"}
    learning_rate : float
    step, total_steps : int
        Steps done so far in this call to ``fit``, and planned for it.
    seconds : float, default=0.0
        Seconds since the call started.
    max_time : float, default=None
        The call's time budget.

    Returns
    -------
    learning_rate : float
        For this step; the loop sets it before every optimiser step.

    Examples
    --------
    >>> from skssl.training import scheduled_learning_rate
    >>> scheduled_learning_rate("cosine", 0.01, 50, 100)
    0.005
    """
    if schedule == "cosine":
        progress = step / total_steps
        if max_time is not None:
            progress = max(progress, seconds / max_time)
        return 0.5 * learning_rate * (1 + math.cos(math.pi * min(progress, 1.0)))
    return learning_rate


def make_optimizer(name, params, learning_rate, weight_decay):
    """The optimiser ``name`` (``"adamw"``, ``"adam"`` or ``"sgd"``, with momentum 0.9).

    Parameters
    ----------
    name : {"adamw", "adam", "sgd"}
    params : iterable of torch.nn.Parameter
    learning_rate, weight_decay : float

    Returns
    -------
    optimizer : torch.optim.Optimizer

    Examples
    --------
    >>> import torch
    >>> from skssl.training import make_optimizer
    >>> make_optimizer("sgd", torch.nn.Linear(2, 2).parameters(), 0.1, 0.0).defaults["momentum"]
    0.9
    """
    if name == "sgd":
        return torch.optim.SGD(params, lr=learning_rate, momentum=0.9, weight_decay=weight_decay)
    cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    return cls(params, lr=learning_rate, weight_decay=weight_decay)


def train_epochs(estimator, data, n_epochs, progress=None):
    """Train a pretrainer's network for ``n_epochs`` epochs on ``data``.

    Each step loads a batch of rows (sorted, so that a memmap is read forwards; from a
    memmap or a dataset, the next batch is read in a background thread while the step
    computes, :func:`skssl._data.prefetch`), asks the estimator's ``_train_step`` for
    the loss, and takes one optimiser step.
    The optimiser's and the pretext generator's states are kept on the estimator
    between calls, so :meth:`partial_fit` and ``warm_start`` continue where the last
    call ended. Training stops after the step that exceeds ``max_time``. Ctrl-C stops
    it after the current step (a second Ctrl-C at once), with a warning, keeps the
    model and sets ``interrupted_``. A non-finite loss raises before its optimiser
    step. With ``checkpoint`` set, the state is written at the end of every epoch
    (and every ``checkpoint_every`` seconds, between steps) with where this call
    stands, so that a call resumed from the file continues with the same batches,
    random draws and learning rates.

    In processes launched by ``torchrun`` (or with ``torch.distributed`` initialised),
    the same loop trains with DistributedDataParallel (:mod:`skssl._distributed`): each
    global batch of ``batch_size`` images is shared out among the ranks, the whole
    step runs inside DDP (gradients averaged, batch normalisation on the global batch),
    the ranks agree after every step on stopping, ``history_`` sums their counts, and
    rank 0 alone writes the checkpoint.

    Parameters
    ----------
    estimator : BasePretrainer
        Initialised: its modules, normalisation and random state exist.
    data : skssl._data.ImageData
        The checked training images.
    n_epochs : int
    progress : dict, default=None
        Where an interrupted call stood, read from a checkpoint: epochs and steps
        done, seconds spent and, within an epoch, its order of rows, batches done and
        running sums. ``None`` starts a new call.

    Examples
    --------
    The loop behind ``fit`` and ``partial_fit``:

    >>> from sklearn.datasets import load_digits
    >>> from skssl import RotationPretrainer
    >>> est = RotationPretrainer(encoder_kwargs={"channels": (4,)}, max_epochs=1,
    ...                          random_state=0).fit(load_digits().images[:64])
    >>> len(est.history_), est.interrupted_
    (1, False)
    """
    est = estimator
    device = est.device_
    net = est._build_network(est.encoder_, est.head_)
    net = net.to(device, memory_format=memory_format(est.channels_last))
    optimizer = make_optimizer(est.optimizer, net.parameters(), est.learning_rate,
                               est.weight_decay)
    if est._optimizer_state is not None:
        optimizer.load_state_dict(est._optimizer_state)
    generator = torch.Generator(device=device)
    if est._generator_state is None:
        generator.manual_seed(est._generator_seed)
    else:
        generator.set_state(est._generator_state)

    run = _new_call(data.n_samples) if progress is None else dict(progress)
    ranks = replicas()
    seed = ranks.generator_seed(est._generator_seed, est.n_iter_, run["step"])
    if seed is not None:  # another rank: other pretext randomness than rank 0's
        generator.manual_seed(seed)
    if run["n_samples"] != data.n_samples:
        raise ValueError(
            f"The checkpoint {est.checkpoint} was written during a fit on "
            f"{run['n_samples']} images, and X has {data.n_samples}: resume with the same "
            "X, or set warm_start=False to start afresh."
        )
    total_steps = n_epochs * len(split_batches(np.arange(data.n_samples), est.batch_size))
    start = time.perf_counter() - run["seconds"]
    ranks.start(run["seconds"])
    saved = time.perf_counter()

    def write_checkpoint(complete=False):
        est._optimizer_state = optimizer.state_dict()
        est._generator_state = generator.get_state()
        run["seconds"] = time.perf_counter() - start
        if ranks.rank == 0:  # the ranks hold the same model: one file, from one of them
            persistence.write_checkpoint(est, est.checkpoint, {**run, "complete": complete})

    est.interrupted_ = False
    net.train()
    try:
        # On the CPU, a step's large activations are freed and allocated again at every
        # step: once steps fault them in afresh, keep them in the heap (1.5x the float32
        # step of the reference CNN, skssl._heap).
        with (_StopAfterStep() as stop, ranks.wrap(est, net) as step,
              FaultWatch(device == "cpu") as faults):
            while run["epoch"] < n_epochs:
                if run["order"] is None:
                    run.update(order=est._rng.permutation(data.n_samples), batch=0,
                               stats=dict.fromkeys(_STATS, 0), epoch_seconds=0.0)
                batches = split_batches(run["order"], est.batch_size)
                epoch_start = time.perf_counter() - run["epoch_seconds"]
                bar = tqdm(
                    total=data.n_samples,
                    initial=sum(len(b) for b in batches[: run["batch"]]),
                    desc=f"{type(est).__name__} epoch {est.n_iter_ + 1}",
                    disable=not est.verbose or ranks.rank != 0,
                    leave=True,
                )
                out_of_time = False
                # This rank's share of every batch, its rows sorted so that a memmap is
                # read forwards; from a memmap or a dataset, the next batch is read while a
                # step computes.
                shares = [(len(rows), ranks.shard(rows)) for rows in batches[run["batch"] :]]
                loader = est._batches(data, shares, device,
                                      normalize=not est._make_batch_takes_raw,
                                      rows_of=lambda share: share[1])
                try:
                    for (size, _), x in loader:
                        # Set at every step, so that a restored optimizer state takes the
                        # current learning_rate.
                        lr = scheduled_learning_rate(
                            est.lr_schedule, est.learning_rate, run["step"], total_steps,
                            ranks.seconds(time.perf_counter() - start), est.max_time,
                        )
                        for group in optimizer.param_groups:
                            group["lr"] = lr
                        where = f"epoch {est.n_iter_ + 1}, step {run['batch'] + 1}/{len(batches)}"
                        _optimizer_step(est, step, optimizer, x, generator, run["stats"], where,
                                        ranks)
                        faults.step_done()
                        run["step"] += 1
                        run["batch"] += 1
                        bar.update(size)
                        now = time.perf_counter()
                        if est.verbose:
                            stats = run["stats"]
                            bar.set_postfix(
                                loss=f"{stats['loss'] / stats['images']:.4f}",
                                images_per_s=f"{stats['images'] / (now - epoch_start):.0f}",
                            )
                        out_of_time = est.max_time is not None and now - start >= est.max_time
                        out_of_time, stop.requested = ranks.agree_to_stop(
                            out_of_time, stop.requested, now - start)
                        if out_of_time or stop.requested:
                            break
                        if (est.checkpoint_every is not None
                                and now - saved >= est.checkpoint_every
                                and run["batch"] < len(batches)):
                            run["epoch_seconds"] = now - epoch_start
                            write_checkpoint()
                            saved = time.perf_counter()
                except KeyboardInterrupt:  # raised within a step: by a task, or a 2nd Ctrl-C
                    stop.requested = True
                finally:
                    loader.close()
                    bar.close()
                if run["stats"]["images"]:
                    _record_epoch(est, *ranks.sum_stats(run["stats"],
                                                        time.perf_counter() - epoch_start))
                run.update(epoch=run["epoch"] + 1, order=None, batch=0, stats=None)
                ended = out_of_time or stop.requested
                if est.checkpoint is not None:
                    write_checkpoint(complete=ended or run["epoch"] == n_epochs)
                    saved = time.perf_counter()
                if ended:
                    break
        if stop.requested:
            est.interrupted_ = True
        if stop.requested and ranks.rank == 0:
            warnings.warn(
                f"{type(est).__name__}: training interrupted by the user (Ctrl-C) after "
                f"{run['step']} step(s) of this call. The model of the last step is kept "
                "and interrupted_ is True; a Pipeline goes on with it.",
                UserWarning,
                stacklevel=4,
            )
    finally:
        net.eval()
        est._optimizer_state = optimizer.state_dict()
        est._generator_state = generator.get_state()


# The running sums of an epoch, recorded in `history_`.
_STATS = ("loss", "images", "inputs", "correct", "count")


def _new_call(n_samples):
    """Where a new call to fit stands: nothing done."""
    return {"n_samples": n_samples, "epoch": 0, "step": 0, "seconds": 0.0, "order": None,
            "batch": 0, "stats": None, "epoch_seconds": 0.0}


class _StopAfterStep:
    """Within it, Ctrl-C asks the loop to stop after the current step.

    A KeyboardInterrupt raised at any point could land inside an optimiser step and
    leave the weights half updated; the handler only sets ``requested``, which the
    loop reads between steps. A second Ctrl-C raises KeyboardInterrupt at once.
    Installed only in the main thread, over Python's default handler (signals go
    to the main thread; another handler, e.g. a notebook's, is left alone).
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _optimizer_step(est, step, optimizer, x, generator, stats, where, ranks):
    loss, record = step(x, generator)
    value = float(loss.detach())
    if not ranks.all_finite(value):  # every rank raises before the gradients' all-reduce
        scale = est.input_scale_
        seen = ("uint8 pixel values" if scale == "uint8"
                else f"values in [{scale[0]:.3g}, {scale[1]:.3g}]")
        if np.isfinite(value):
            value = f"non-finite on another of the {ranks.world_size} processes"
        raise FloatingPointError(
            f"The pretext loss became {value} at {where}, before any optimiser step with "
            f"it. Likely causes: a learning rate too high (learning_rate="
            f"{est.learning_rate:g}: lower it), images on an unusual scale (fit saw {seen}; "
            "pass uint8 images or floats in [0, 1]), or a task or loss returning "
            "non-finite values. The estimator is left as it was before this call."
        )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    stats["loss"] += value * len(x)
    stats["images"] += len(x)
    for key, count in record.items():
        stats[key] = stats.get(key, 0) + count


def _record_epoch(est, stats, seconds):
    est.n_iter_ += 1
    loss = stats["loss"] / stats["images"]
    est.loss_curve_.append(loss)
    est.history_.append(
        {
            "epoch": est.n_iter_,
            "loss": loss,
            "seconds": seconds,
            "images": stats["images"],
            "images_per_s": stats["images"] / seconds,
            "inputs_per_s": stats["inputs"] / seconds,
            "pretext_accuracy": stats["correct"] / stats["count"] if stats["count"] else None,
        }
    )
