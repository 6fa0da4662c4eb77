"""PretextPretrainer: any pretext task written as a plain function."""

from numbers import Integral

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from ..base import BasePretrainer, mlp_head

_LOSSES = {"cross_entropy", "mse", "bce"}

# Images shown to the task before training, to size the head and check its outputs.
_PROBE_IMAGES = 8

# `n_tiles` of the probe call: the layout is not known yet.
_ANY_LAYOUT = object()


def _describe(value):
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


class PretextPretrainer(BasePretrainer):
    """Learn image features from a pretext task written as a plain function.

    ``task(x, generator) -> (inputs, targets)`` receives a normalised batch ``x`` of
    shape ``(B, C, H, W)`` (on the training device) and a :class:`torch.Generator`
    (on the same device) for its randomness, and returns what the network sees and
    what it must predict:

    - ``inputs``: a float tensor ``(N, C, h, w)`` of ``N`` images (any size the
      encoder accepts, e.g. rotated copies, crops or corrupted images), or
      ``(N, T, C, h, w)`` of ``T`` tiles per sample that go through the shared encoder
      and whose ``T`` feature vectors are concatenated before the head (as in jigsaw
      puzzles);
    - ``targets`` for the ``(N, n_outputs)`` head outputs, depending on ``loss``:

      - ``"cross_entropy"``: integer classes of shape ``(N,)`` in
        ``[0, n_outputs)``, or float class probabilities of shape ``(N, n_outputs)``;
      - ``"mse"``: real values of shape ``(N, n_outputs)``;
      - ``"bce"``: independent binary labels (bool, 0/1 or probabilities in
        ``[0, 1]``) of shape ``(N, n_outputs)``; the head outputs logits;
      - a callable ``loss(outputs, targets) -> scalar tensor``: anything the callable
        accepts.

    The head is ``Linear(num_features, n_outputs)`` on the encoder's pooled
    features (``T * num_features`` for tiles), or with ``hidden_size`` the MLP
    :func:`~skssl.base.mlp_head` (``Linear-BatchNorm-ReLU-Linear``) that the classic
    methods use (``hidden_size=256`` gives :class:`RotationPretrainer`'s head).
    Everything else (the training loop, seeding, devices, batching, persistence,
    :meth:`transform`) comes from :class:`~skssl.base.BasePretrainer`, and
    :meth:`transform` returns the encoder's features of whole images.

    Before training, the task is called once on the first few training images to size
    the head; the outputs of that call and of the first batch of every
    :meth:`fit` or :meth:`partial_fit` are checked, so that a task returning the
    wrong types, shapes or values fails with a message saying what was expected
    instead of an error deep inside torch. The task's randomness should come from
    ``generator`` alone, so that the same ``random_state`` gives the same features.
    To pickle the estimator, define ``task`` (and a callable ``loss``) at module
    level: lambdas and nested functions do not pickle.

    Parameters
    ----------
    task : callable
        ``task(x, generator) -> (inputs, targets)``, see above.
    n_outputs : int
        Size of the head's output: the number of classes for cross-entropy, of values
        for ``"mse"``, of binary labels for ``"bce"``.
    loss : {"cross_entropy", "mse", "bce"} or callable, default="cross_entropy"
        The pretext loss, or ``loss(outputs, targets)`` returning a scalar tensor.
    hidden_size : int, default=None
        Width of the hidden layer of an MLP head (``Linear-BatchNorm-ReLU-Linear``);
        ``None`` makes the head linear. A nonlinear head keeps the last,
        task-specific layer off the encoder, which often transfers better.
    encoder : str, torch.nn.Module or callable, default="cnn"
        A name from :func:`skssl.encoders.available_encoders`, a module (deep-copied at
        fit, never trained in place) or a factory returning a module.
    encoder_kwargs : dict, default=None
        Keyword arguments of a named encoder or a factory.
    image_shape : tuple of int, default=None
        ``(H, W)`` or ``(H, W, C)`` of flattened input; ``None`` infers a square shape.
    max_epochs : int, default=10
        Passes over the data in :meth:`fit`.
    max_time : float, default=None
        Time budget of :meth:`fit` in seconds.
    batch_size : int, default=256
        Images per batch given to ``task``.
    learning_rate : float, default=1e-3
    lr_schedule : {"constant", "cosine"}, default="constant"
        ``"cosine"`` decays the learning rate towards 0 over each fit call (or over
        ``max_time``, when that budget ends first).
    weight_decay : float, default=1e-4
    optimizer : {"adamw", "adam", "sgd"}, default="adamw"
    device : str, default="auto"
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and the generator given to ``task``.
    verbose : int, default=0
        Show a progress bar per epoch.
    warm_start : bool, default=False
        Whether :meth:`fit` continues from the previous fit.
    channels_last : bool, default=True
        Run the encoder on ``channels_last`` (NHWC) tensors, about 1.5x faster
        for convolutions on a CPU; False for an encoder that calls ``.view`` on
        its activations.

    Attributes
    ----------
    encoder_ : torch.nn.Module
        The trained encoder.
    head_ : torch.nn.Module
        The pretext head.
    loss_curve_ : list of float
        Mean training loss of each epoch.
    history_ : list of dict
        Per epoch: ``loss``, ``seconds``, ``images_per_s``, ``inputs_per_s`` and
        ``pretext_accuracy`` (for integer cross-entropy targets, else None).
    n_iter_ : int
        Epochs trained.
    n_features_in_ : int
        ``H * W * C``.
    image_shape_ : tuple of (int, int, int)
        ``(H, W, C)`` seen at fit.
    channel_mean_, channel_std_ : ndarray of shape (C,)
        Per-channel normalisation learnt at fit.
    device_ : str
        Device used by the last fit.

    See Also
    --------
    RotationPretrainer : The rotation task of the example below, as a named method.
    skssl.base.BasePretrainer : The training loop and the hooks a method overrides.

    Examples
    --------
    Rotation prediction (Gidaris et al. 2018) in three lines (with
    ``hidden_size=256`` it is exactly :class:`RotationPretrainer`):

    >>> import torch
    >>> from sklearn.datasets import load_digits
    >>> from skssl import PretextPretrainer
    >>> def rotate(x, generator):
    ...     inputs = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
    ...     return inputs, torch.arange(4, device=x.device).repeat_interleave(len(x))
    >>> X = load_digits().images[:200]
    >>> est = PretextPretrainer(rotate, n_outputs=4, encoder_kwargs={"channels": (8, 16)},
    ...                         max_epochs=3, batch_size=50, random_state=0)
    >>> est.fit_transform(X).shape
    (200, 16)
    >>> est.loss_curve_[-1] < est.loss_curve_[0]
    True
    """

    _parameter_constraints: dict = {
        **BasePretrainer._parameter_constraints,
        "task": [callable],
        "n_outputs": [Interval(Integral, 1, None, closed="left")],
        "loss": [StrOptions(_LOSSES), callable],
        "hidden_size": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        task,
        n_outputs,
        *,
        loss="cross_entropy",
        hidden_size=None,
        encoder="cnn",
        encoder_kwargs=None,
        image_shape=None,
        max_epochs=10,
        max_time=None,
        batch_size=256,
        learning_rate=1e-3,
        lr_schedule="constant",
        weight_decay=1e-4,
        optimizer="adamw",
        device="auto",
        random_state=None,
        verbose=0,
        warm_start=False,
        channels_last=True,
    ):
        super().__init__(
            encoder=encoder,
            encoder_kwargs=encoder_kwargs,
            image_shape=image_shape,
            max_epochs=max_epochs,
            max_time=max_time,
            batch_size=batch_size,
            learning_rate=learning_rate,
            lr_schedule=lr_schedule,
            weight_decay=weight_decay,
            optimizer=optimizer,
            device=device,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
            channels_last=channels_last,
        )
        self.task = task
        self.n_outputs = n_outputs
        self.loss = loss
        self.hidden_size = hidden_size

    # ------------------------------------------------------------------ method hooks
    def _initialize(self, data):
        # `_build_head` runs the task on real images to learn the number of tiles.
        self._probe_data = data
        try:
            super()._initialize(data)
        finally:
            del self._probe_data

    def _build_head(self, n_features):
        self._n_tiles = self._probe_task()
        n_in = n_features * (self._n_tiles or 1)
        if self.hidden_size is None:
            return nn.Linear(n_in, self.n_outputs)
        return mlp_head(n_in, self.n_outputs, self.hidden_size)

    def _probe_task(self):
        """Run the task on the first training images; return its tiles per sample or None."""
        data = self._probe_data
        rows = np.arange(min(data.n_samples, _PROBE_IMAGES))
        x = self._load(data, rows, "cpu")
        # The head is built inside the base class's seeded RNG fork: the probe must not
        # move the global RNG, whatever the task draws from it.
        with torch.random.fork_rng(devices=[]):
            result = self.task(x, torch.Generator().manual_seed(0))
        inputs, _ = self._check_task_output(result, x, n_tiles=_ANY_LAYOUT, check_values=True)
        return int(inputs.shape[1]) if inputs.ndim == 5 else None

    def _train(self, data, n_epochs):
        self._check_next_batch = True
        super()._train(data, n_epochs)

    def _make_batch(self, x, generator):
        # Shapes and types are checked on every batch (free); values, which cost a
        # device synchronisation, on the first batch of each fit.
        check_values = getattr(self, "_check_next_batch", False)
        self._check_next_batch = False
        return self._check_task_output(self.task(x, generator), x, self._n_tiles, check_values)

    def _loss(self, outputs, targets):
        if self.loss == "cross_entropy":
            if targets.is_floating_point():
                targets = targets.float()
            return F.cross_entropy(outputs, targets)
        if self.loss == "mse":
            return F.mse_loss(outputs.float(), targets.float())
        if self.loss == "bce":
            return F.binary_cross_entropy_with_logits(outputs.float(), targets.float())
        value = self.loss(outputs, targets)
        if not isinstance(value, torch.Tensor) or value.ndim != 0:
            raise TypeError(
                f"The loss callable must return a scalar tensor; it returned {_describe(value)}."
            )
        return value

    # ------------------------------------------------------------------ checks
    def _check_task_output(self, result, x, n_tiles, check_values):
        """Check what the task returned for batch ``x``; return ``(inputs, targets)``."""
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            got = (
                f"a {len(result)}-tuple" if isinstance(result, (tuple, list)) else _describe(result)
            )
            raise TypeError(
                f"task(x, generator) must return a tuple (inputs, targets); it returned {got}."
            )
        inputs, targets = result
        C = x.shape[1]
        if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
            raise TypeError(
                f"The task's inputs must be a float tensor of shape (N, {C}, h, w) or "
                f"(N, T, {C}, h, w); it returned {_describe(inputs)}."
            )
        if inputs.ndim not in (4, 5) or inputs.shape[-3] != C or inputs.shape[0] == 0:
            raise ValueError(
                f"The task's inputs must have shape (N, {C}, h, w) or (N, T, {C}, h, w) "
                f"with N >= 1 ({C} channel(s), as the images); it returned shape "
                f"{tuple(inputs.shape)}."
            )
        if inputs.device != x.device:
            raise ValueError(
                f"The task's inputs are on {inputs.device} but the batch is on {x.device}; "
                "make new tensors on x.device."
            )
        tiles = int(inputs.shape[1]) if inputs.ndim == 5 else None
        if n_tiles is not _ANY_LAYOUT and tiles != n_tiles:
            expected = "(N, C, h, w) images" if n_tiles is None else f"{n_tiles} tiles"
            raise ValueError(
                f"The task returned inputs of shape {tuple(inputs.shape)}, but its first "
                f"batch had {expected}; the head is sized for that, so every batch must keep "
                "the same layout."
            )
        n = inputs.shape[0]
        if check_values and not bool(torch.isfinite(inputs).all()):
            raise ValueError("The task's inputs contain NaN or infinity.")
        if isinstance(self.loss, str):
            self._check_targets(targets, n, check_values)
        return inputs, targets

    def _check_targets(self, targets, n, check_values):
        K = self.n_outputs
        if not isinstance(targets, torch.Tensor):
            raise TypeError(
                f"With loss={self.loss!r} the task's targets must be a tensor; it returned "
                f"{_describe(targets)}."
            )
        if targets.shape[:1] != (n,):
            raise ValueError(
                f"The task returned {n} inputs but targets of shape {tuple(targets.shape)}: "
                f"targets need one row per input ({n})."
            )
        if targets.is_complex():
            raise TypeError(f"The task's targets must be real; got {_describe(targets)}.")
        if self.loss == "cross_entropy":
            hard = not targets.is_floating_point() and targets.dtype != torch.bool
            if hard and targets.ndim == 1:
                if check_values and n and not (0 <= targets.min() and targets.max() < K):
                    raise ValueError(
                        f"loss='cross_entropy' needs class targets in [0, n_outputs={K}); the "
                        f"task returned targets in [{int(targets.min())}, {int(targets.max())}]."
                    )
                return
            if targets.is_floating_point() and targets.shape == (n, K):
                if check_values and n and not bool((targets >= 0).all()):
                    raise ValueError(
                        "loss='cross_entropy' with float targets needs class probabilities "
                        "(non-negative); the task returned negative values."
                    )
                return
            raise ValueError(
                f"loss='cross_entropy' needs integer class targets of shape ({n},) in "
                f"[0, {K}) or float class probabilities of shape ({n}, {K}); the task "
                f"returned {_describe(targets)}."
            )
        if targets.shape != (n, K):
            raise ValueError(
                f"loss={self.loss!r} compares targets with the head's ({n}, n_outputs={K}) "
                f"outputs; the task returned targets of shape {tuple(targets.shape)}."
            )
        if check_values and n:
            finite = bool(torch.isfinite(targets.float()).all())
            if self.loss == "bce" and not (finite and 0 <= targets.min() and targets.max() <= 1):
                raise ValueError(
                    "loss='bce' needs binary targets in [0, 1]; the task returned values in "
                    f"[{float(targets.min()):g}, {float(targets.max()):g}]."
                )
            if not finite:
                raise ValueError("The task's targets contain NaN or infinity.")
