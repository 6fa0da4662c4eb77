"""PretextPretrainer: any pretext task written as a plain function."""

from numbers import Integral

import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from ..base import BasePretrainer
from ..heads import mlp_head

_LOSSES = {"cross_entropy", "mse", "bce"}


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
    :func:`~skssl.heads.mlp_head` (``Linear-BatchNorm-ReLU-Linear``) that the classic
    methods use (``hidden_size=256`` gives :class:`RotationPretrainer`'s head).
    Everything else (the training loop, seeding, devices, batching, persistence,
    :meth:`transform`) comes from :class:`~skssl.base.BasePretrainer`, and
    :meth:`transform` returns the encoder's features of whole images.

    Before training, the task is called once on a probe batch of random images of the
    training shape to size the head, and what it returns for every batch is checked
    (types, shapes, and values: class indices in range, finite inputs), so that a
    task returning the wrong types, shapes or values fails with a message saying what
    was expected instead of an error deep inside torch. The task's randomness should come from
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
    %(common_parameters)s
    loss : {"cross_entropy", "mse", "bce"} or callable, default="cross_entropy"
        The pretext loss, or ``loss(outputs, targets)`` returning a scalar tensor.
    hidden_size : int, default=None
        Width of the hidden layer of an MLP head (``Linear-BatchNorm-ReLU-Linear``);
        ``None`` makes the head linear. A nonlinear head keeps the last,
        task-specific layer off the encoder, which often transfers better.

    Attributes
    ----------
    head_ : torch.nn.Module
        The pretext head.
    %(common_attributes)s

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
    (200, 80)
    >>> est.loss_curve_[-1] < est.loss_curve_[0]
    True
    """

    _network_parameters = (*BasePretrainer._network_parameters, "n_outputs", "hidden_size")
    _parameter_constraints: dict = {
        **BasePretrainer._parameter_constraints,
        "task": [callable],
        "n_outputs": [Interval(Integral, 1, None, closed="left")],
        "loss": [StrOptions(_LOSSES), callable],
        "hidden_size": [Interval(Integral, 1, None, closed="left"), None],
    }

    _parameter_notes = {
        "pooling": (
            '``"auto"`` by default, as for the built-in predictive tasks (the pyramid\n'
            "gave each of them 3-4 points of linear probe over the mean on Fashion-MNIST)."
        ),
    }
    _attribute_notes = {
        "history_": "``pretext_accuracy`` is defined for integer cross-entropy targets.",
    }

    def __init__(
        self, task, n_outputs, *, encoder="cnn", encoder_kwargs=None, image_shape=None,
        max_epochs=10, max_time=None, batch_size=256, learning_rate=1e-3,
        lr_schedule="constant", weight_decay=1e-4, optimizer="adamw", device="auto",
        random_state=None, verbose=0, warm_start=False, channels_last=True, precision="auto",
        checkpoint=None, checkpoint_every=None, pooling="auto", loss="cross_entropy",
        hidden_size=None,
    ):
        self._set_params(locals())

    # ------------------------------------------------------------------ method hooks
    def _build_head(self, n_inputs):
        if self.hidden_size is None:
            return nn.Linear(n_inputs, self.n_outputs)
        return mlp_head(n_inputs, self.n_outputs, self.hidden_size)

    def _make_batch(self, x, generator):
        return self._check_task_output(self.task(x, generator), x)

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
    def _check_task_output(self, result, x):
        """Check what the task returned for batch ``x``; return ``(inputs, targets)``.

        Values are checked on every batch: the check costs far less than the step, and
        a task whose labels go out of range after the first batch fails clearly too.
        """
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
        # The head was sized on the probe batch (`_head_inputs` is None during the probe).
        tiles = int(inputs.shape[1]) if inputs.ndim == 5 else 1
        expected = self._head_inputs
        if expected is not None and tiles * self.encoder_.num_features != expected:
            raise ValueError(
                f"The task returned inputs of shape {tuple(inputs.shape)}, but the head was "
                f"sized for {expected // self.encoder_.num_features} tile(s) per sample on "
                "the probe batch; every batch must keep the same layout."
            )
        n = inputs.shape[0]
        if not bool(torch.isfinite(inputs).all()):
            raise ValueError(
                "The task returned inputs with NaN or infinity, from a batch of finite "
                "images: check its arithmetic (a division by zero, a log of 0?)."
            )
        if isinstance(self.loss, str):
            self._check_targets(targets, n)
        return inputs, targets

    def _check_targets(self, targets, n):
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
                if n and not (0 <= targets.min() and targets.max() < K):
                    raise ValueError(
                        f"loss='cross_entropy' needs class targets in [0, n_outputs={K}); the "
                        f"task returned targets in [{int(targets.min())}, {int(targets.max())}]."
                    )
                return
            if targets.is_floating_point() and targets.shape == (n, K):
                if n and not bool((targets >= 0).all()):
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
        if n:
            finite = bool(torch.isfinite(targets.float()).all())
            if self.loss == "bce" and not (finite and 0 <= targets.min() and targets.max() <= 1):
                raise ValueError(
                    "loss='bce' needs binary targets in [0, 1]; the task returned values in "
                    f"[{float(targets.min()):g}, {float(targets.max()):g}]."
                )
            if not finite:
                raise ValueError("The task's targets contain NaN or infinity.")
