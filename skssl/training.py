"""The one training loop of skssl: epochs, time budget, schedule, progress, history.

Every pretrainer trains through :func:`train_epochs`. A method never changes the
loop: it says what one step computes (``BasePretrainer._train_step``), and the loop
does the rest: shuffling and batching, the learning-rate schedule, the optimiser
step, the time budget, the progress bar, Ctrl-C, and one ``history_`` entry per epoch.
"""

import math
import time
import warnings

import numpy as np
import torch
from tqdm.auto import tqdm

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


def train_epochs(estimator, data, n_epochs):
    """Train a pretrainer's network for ``n_epochs`` epochs on ``data``.

    Each step loads a batch of rows (sorted, so that a memmap is read forwards),
    asks the estimator's ``_train_step`` for the loss, and takes one optimiser step.
    The optimiser's and the pretext generator's states are kept on the estimator
    between calls, so :meth:`partial_fit` and ``warm_start`` continue where the last
    call ended. Training stops after the step that exceeds ``max_time``; Ctrl-C ends
    it with a warning and keeps the model of the last completed step.

    Parameters
    ----------
    estimator : BasePretrainer
        Initialised: its modules, normalisation and random state exist.
    data : skssl._data.ImageData
        The checked training images.
    n_epochs : int

    Examples
    --------
    The loop behind ``fit`` and ``partial_fit``:

    >>> from sklearn.datasets import load_digits
    >>> from skssl import RotationPretrainer
    >>> est = RotationPretrainer(encoder_kwargs={"channels": (4,)}, max_epochs=1,
    ...                          random_state=0).fit(load_digits().images[:64])
    >>> len(est.history_)
    1
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

    net.train()
    start = time.perf_counter()
    out_of_time = False
    total_steps = n_epochs * len(split_batches(np.arange(data.n_samples), est.batch_size))
    step = 0
    try:
        for _ in range(n_epochs):
            order = est._rng.permutation(data.n_samples)
            stats = {"loss": 0.0, "images": 0, "inputs": 0, "correct": 0, "count": 0}
            epoch_start = time.perf_counter()
            bar = tqdm(
                total=data.n_samples,
                desc=f"{type(est).__name__} epoch {est.n_iter_ + 1}",
                disable=not est.verbose,
                leave=True,
            )
            try:
                for rows in split_batches(order, est.batch_size):
                    # Set at every step, so that a restored optimizer state takes the
                    # current learning_rate.
                    lr = scheduled_learning_rate(
                        est.lr_schedule, est.learning_rate, step, total_steps,
                        time.perf_counter() - start, est.max_time,
                    )
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    step += 1
                    _optimizer_step(est, net, optimizer, data, np.sort(rows), generator, stats)
                    bar.update(len(rows))
                    if est.verbose:
                        seconds = time.perf_counter() - epoch_start
                        bar.set_postfix(
                            loss=f"{stats['loss'] / stats['images']:.4f}",
                            images_per_s=f"{stats['images'] / seconds:.0f}",
                        )
                    if est.max_time is not None and time.perf_counter() - start >= est.max_time:
                        out_of_time = True
                        break
            finally:
                bar.close()
                if stats["images"]:
                    _record_epoch(est, stats, time.perf_counter() - epoch_start)
            if out_of_time:
                break
    except KeyboardInterrupt:
        warnings.warn(
            "Training interrupted by the user; the model of the last completed batch "
            "is kept.",
            stacklevel=4,
        )
    finally:
        net.eval()
        est._optimizer_state = optimizer.state_dict()
        est._generator_state = generator.get_state()


def _optimizer_step(est, net, optimizer, data, rows, generator, stats):
    x = est._load(data, rows, est.device_, normalize=not est._make_batch_takes_raw)
    loss, record = est._train_step(net, x, generator)
    value = float(loss.detach())
    if not np.isfinite(value):
        raise FloatingPointError(
            f"The pretext loss became {value}; lower learning_rate (now {est.learning_rate})."
        )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    stats["loss"] += value * len(rows)
    stats["images"] += len(rows)
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
