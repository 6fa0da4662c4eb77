"""BasePretrainer: the scikit-learn glue and the single training loop of skssl."""

import contextlib
import copy
import inspect
import math
import re
import time
import warnings
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn
from tqdm.auto import tqdm

from ._data import check_images
from .encoders import make_encoder

__all__ = ["BasePretrainer", "PretextNet", "mlp_head", "resolve_device"]


def resolve_device(device):
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` into a device name.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` picks CUDA, then MPS, then the CPU.

    Returns
    -------
    device : str
        ``"cpu"``, ``"cuda:N"`` or ``"mps"``.

    Raises
    ------
    ValueError
        For an unknown name or a device this machine does not have.

    Examples
    --------
    >>> from skssl.base import resolve_device
    >>> resolve_device("cpu")
    'cpu'
    """
    name = str(device)
    if name == "auto":
        if torch.cuda.is_available():
            return f"cuda:{torch.cuda.current_device()}"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name == "cpu":
        return "cpu"
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if match:
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={name!r} but CUDA is not available on this machine; "
                "use device='auto' or device='cpu'."
            )
        index = int(match.group(1) or torch.cuda.current_device())
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device={name!r} but this machine has {torch.cuda.device_count()} CUDA "
                "device(s)."
            )
        return f"cuda:{index}"
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError("device='mps' but MPS is not available; use 'auto' or 'cpu'.")
        return "mps"
    raise ValueError(
        f"Unknown device {name!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."
    )


def _to_cpu(obj):
    """Copy tensors and modules in a (nested) object to the CPU."""
    if isinstance(obj, nn.Module):
        return copy.deepcopy(obj).to("cpu")
    if isinstance(obj, torch.Tensor):
        return obj.to("cpu")
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _on_cpu(module):
    return all(p.device.type == "cpu" for p in module.parameters()) and all(
        b.device.type == "cpu" for b in module.buffers()
    )


def _split_batches(order, batch_size):
    """Split ``order`` into nearly equal batches of at most ``batch_size``, none of size 1."""
    n = len(order)
    n_batches = -(-n // batch_size)
    if n >= 2 and n // n_batches < 2:
        n_batches = max(1, n // 2)
    return np.array_split(order, n_batches)


def mlp_head(n_features, n_outputs, hidden=256):
    """A small classification head: ``Linear-BatchNorm-ReLU-Linear``.

    Parameters
    ----------
    n_features : int
        Input size (the encoder's features, concatenated over tiles where relevant).
    n_outputs : int
        Number of pretext classes.
    hidden : int, default=256
        Hidden units.

    Returns
    -------
    head : torch.nn.Sequential

    Examples
    --------
    >>> import torch
    >>> from skssl.base import mlp_head
    >>> mlp_head(128, 4)(torch.zeros(2, 128)).shape
    torch.Size([2, 4])
    """
    return nn.Sequential(
        nn.Linear(n_features, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, n_outputs),
    )


class PretextNet(nn.Module):
    """The module trained by a pretrainer: the encoder, then the head.

    Inputs of shape ``(B, C, H, W)`` go through ``head(encoder(x))``. Inputs of shape
    ``(B, T, C, H, W)`` (``T`` tiles or patches per sample, as in jigsaw or context
    prediction) go through the shared encoder as one batch of ``B*T`` images, and the
    ``T`` feature vectors of a sample are concatenated in order before the head.

    Parameters
    ----------
    encoder : torch.nn.Module
    head : torch.nn.Module

    Examples
    --------
    >>> import torch
    >>> from skssl.base import PretextNet
    >>> from skssl.encoders import make_encoder
    >>> enc = make_encoder("cnn", 1, 8, channels=(4,))
    >>> net = PretextNet(enc, torch.nn.Linear(2 * 4, 8))
    >>> net(torch.zeros(3, 2, 1, 8, 8)).shape
    torch.Size([3, 8])
    """

    def __init__(self, encoder, head):
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, x):
        if x.ndim == 5:
            b, t = x.shape[:2]
            features = self.encoder(x.flatten(0, 1))
            return self.head(features.reshape(b, t * features.shape[-1]))
        return self.head(self.encoder(x))


class BasePretrainer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Base class of the pretrainers: the sklearn glue and the single training loop.

    A pretrainer learns an encoder on unlabelled images by solving a pretext task,
    then :meth:`transform` maps images to the encoder's features. A method subclasses
    this class and says only

    - which head it needs: ``_build_head(n_features) -> nn.Module``;
    - how a batch becomes inputs and targets: ``_make_batch(x, generator)``;
    - how the loss is computed: ``_loss(outputs, targets)`` (cross-entropy by default);

    and, where the method needs them, ``_prepare(x)`` (applied to every batch before the
    encoder sees it, at fit and transform), ``_build_network(encoder, head)`` (the
    module that is trained, :class:`PretextNet` by default) and
    ``_count_correct(outputs, targets)`` (the pretext accuracy of ``history_``).
    A method that augments images sets ``_make_batch_takes_raw = True``: its
    ``_make_batch`` then receives the batch on the [0, 1] scale, before normalisation,
    and normalises its inputs with ``_normalize``. A method that trains the encoder on
    patches returns their size from ``_encoder_input_size(image_size)``: the encoder
    is built for that size and checked on whole images, which :meth:`transform` gives it.

    Parameters
    ----------
    encoder : str, torch.nn.Module or callable, default="cnn"
        A name from :func:`skssl.encoders.available_encoders`, a module (deep-copied at
        fit, never trained in place) or a factory returning a module. A factory is called
        with ``in_channels=`` and ``image_size=`` when its signature accepts them, plus
        ``encoder_kwargs``. The module maps ``(B, C, H, W)`` to ``(B, n_features)``; its
        ``num_features`` attribute, or one dry forward pass, gives ``n_features``.
    encoder_kwargs : dict, default=None
        Keyword arguments for a named encoder or a factory (e.g. ``{"channels": (16, 32)}``).
    image_shape : tuple of int, default=None
        ``(H, W)`` or ``(H, W, C)`` of flattened ``(n, H*W*C)`` input; ``None`` infers a
        square grayscale or RGB shape. Ignored for ``(n, H, W[, C])`` input.
    max_epochs : int, default=10
        Passes over the data in :meth:`fit`.
    max_time : float, default=None
        Time budget of :meth:`fit` in seconds; training stops after the batch that
        exceeds it.
    batch_size : int, default=256
        Images per batch (a method may turn each into several inputs).
    learning_rate : float, default=1e-3
    lr_schedule : {"constant", "cosine"}, default="constant"
        ``"cosine"`` decays the learning rate from ``learning_rate`` towards 0 along a
        half cosine (Loshchilov & Hutter 2017, without restarts) over each call to
        :meth:`fit` (``max_epochs`` epochs) or :meth:`partial_fit` (one epoch), or over
        ``max_time`` seconds when that budget ends first.
    weight_decay : float, default=1e-4
    optimizer : {"adamw", "adam", "sgd"}, default="adamw"
        ``"sgd"`` uses momentum 0.9.
    device : str, default="auto"
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``. Mixed precision
        (bfloat16) is used on CUDA.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and the pretext task's randomness.
        The same integer on the CPU gives the same features.
    verbose : int, default=0
        Show a progress bar per epoch with the loss and images/s.
    warm_start : bool, default=False
        Whether :meth:`fit` continues from the previous fit.
    channels_last : bool, default=True
        Run the encoder on ``channels_last`` tensors (NHWC memory layout), at fit and
        in :meth:`transform`. Convolutions run about 1.5x faster so on a CPU (and with
        mixed precision on a GPU); the features agree with the default layout up to
        float rounding. Set it to False for an encoder that calls ``.view`` on its
        activations (use ``.reshape`` or ``.flatten`` instead).

    Attributes
    ----------
    encoder_ : torch.nn.Module
        The trained encoder.
    head_ : torch.nn.Module
        The pretext head.
    loss_curve_ : list of float
        Mean training loss of each epoch.
    history_ : list of dict
        One entry per epoch: ``epoch``, ``loss``, ``seconds``, ``images``,
        ``images_per_s`` (unique images), ``inputs_per_s`` (encoder inputs, e.g. 4 per
        image for rotation) and ``pretext_accuracy`` (None when undefined).
    n_iter_ : int
        Epochs trained (a partial epoch cut by ``max_time`` counts).
    n_features_in_ : int
        ``H * W * C``.
    image_shape_ : tuple of (int, int, int)
        ``(H, W, C)`` seen at fit.
    channel_mean_, channel_std_ : ndarray of shape (C,)
        Per-channel statistics learnt at fit (on the [0, 1] scale for uint8 images),
        used to normalise every batch.
    device_ : str
        Device used by the last fit.
    """

    _parameter_constraints: dict = {
        "encoder": [str, nn.Module, callable],
        "encoder_kwargs": [dict, None],
        "image_shape": [tuple, list, None],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "max_time": [Interval(Real, 0, None, closed="neither"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "lr_schedule": [StrOptions({"constant", "cosine"})],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "optimizer": [StrOptions({"adamw", "adam", "sgd"})],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "channels_last": ["boolean"],
    }

    def __init__(
        self,
        *,
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
        self.encoder = encoder
        self.encoder_kwargs = encoder_kwargs
        self.image_shape = image_shape
        self.max_epochs = max_epochs
        self.max_time = max_time
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.channels_last = channels_last

    # ------------------------------------------------------------------ method hooks
    # Colour augmentations need images on their [0, 1] scale (uint8 / 255, floats as
    # given): a method that sets this gets them so, and normalises with `_normalize`.
    _make_batch_takes_raw = False

    def _build_head(self, n_features):
        """Return the pretext head applied to the encoder's features."""
        raise NotImplementedError

    def _make_batch(self, x, generator):
        """Turn a normalised batch ``(B, C, H, W)`` into ``(inputs, targets)``."""
        raise NotImplementedError

    def _loss(self, outputs, targets):
        """Cross-entropy over the last dimension (any leading shape)."""
        return F.cross_entropy(outputs.reshape(-1, outputs.shape[-1]), targets.reshape(-1))

    def _count_correct(self, outputs, targets):
        """Return ``(n_correct, n_predictions)`` of a training batch, ``(0, 0)`` if undefined.

        By default, the argmax of the outputs against integer class targets.
        """
        if (
            isinstance(targets, torch.Tensor)
            and not targets.is_floating_point()
            and outputs.shape[:-1] == targets.shape
        ):
            return int((outputs.argmax(-1) == targets).sum()), targets.numel()
        return 0, 0

    def _prepare(self, x):
        """Applied to every normalised batch, at fit and transform (identity)."""
        return x

    def _build_network(self, encoder, head):
        """Return the module trained by the loop, holding ``encoder`` and ``head``."""
        return PretextNet(encoder, head)

    def _check_image_shape(self, image_shape):
        """Raise a ValueError for images the method cannot use (all accepted)."""

    def _encoder_input_size(self, image_size):
        """``(height, width)`` of the encoder's inputs at fit, for prepared images of
        ``image_size``: the images themselves by default, a patch for patch methods."""
        return image_size

    # ------------------------------------------------------------------ sklearn API
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the encoder on the pretext task.

        Parameters
        ----------
        X : array-like, memmap or torch.Tensor
            Images: ``(n, H*W*C)``, ``(n, H, W)`` or ``(n, H, W, C)``.
        y : None
            Ignored: self-supervised.

        Returns
        -------
        self : object
        """
        reset = not (self.warm_start and hasattr(self, "encoder_"))
        return self._fit(X, self.max_epochs, reset)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train for one epoch, continuing from the previous call.

        Parameters
        ----------
        X : array-like, memmap or torch.Tensor
            Images of the same shape as in earlier calls.
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        return self._fit(X, 1, not hasattr(self, "encoder_"))

    def transform(self, X):
        """Map images to the trained encoder's features.

        The encoder runs in eval mode, without gradients, batch by batch.

        Parameters
        ----------
        X : array-like, memmap or torch.Tensor
            Images of the shape seen at fit.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out), dtype float32
        """
        check_is_fitted(self)
        data = self._check_images(X, reset=False)
        device = resolve_device(self.device)
        self.encoder_.to(device, memory_format=self._memory_format)
        out = np.empty((data.n_samples, self.encoder_.num_features), dtype=np.float32)
        with torch.inference_mode(), self._autocast(device):
            for start in range(0, data.n_samples, self.batch_size):
                rows = slice(start, start + self.batch_size)
                x = self._to_memory_format(self._load(data, rows, device))
                features = self._features(x)
                out[rows] = features.float().cpu().numpy()
        return out

    def score(self, X, y=None):
        """Minus the mean pretext loss on ``X`` (higher is better).

        The pretext randomness is seeded, so the score of a fitted model is
        reproducible; this lets GridSearchCV tune a pretrainer on its own.

        Parameters
        ----------
        X : array-like, memmap or torch.Tensor
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        check_is_fitted(self)
        data = self._check_images(X, reset=False)
        device = resolve_device(self.device)
        net = self._build_network(self.encoder_, self.head_)
        net = net.to(device, memory_format=self._memory_format).eval()
        generator = torch.Generator(device=device).manual_seed(0)
        total = 0.0
        with torch.inference_mode(), self._autocast(device):
            for rows in _split_batches(np.arange(data.n_samples), self.batch_size):
                x = self._load(data, rows, device, normalize=not self._make_batch_takes_raw)
                inputs, targets = self._make_batch(x, generator)
                inputs = self._to_memory_format(inputs)
                total += float(self._loss(net(inputs), targets)) * len(rows)
        return -total / data.n_samples

    @property
    def _n_features_out(self):
        return self.encoder_.num_features

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def __getstate__(self):
        state = super().__getstate__()
        # A model trained on a GPU must unpickle on a CPU-only machine.
        if not all(_on_cpu(v) for v in state.values() if isinstance(v, nn.Module)):
            state = {k: _to_cpu(v) for k, v in state.items()}
        return state

    # ------------------------------------------------------------------ internals
    def _features(self, x):
        return self.encoder_(x)

    @property
    def _memory_format(self):
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def _to_memory_format(self, x):
        """Images ``(B, C, H, W)`` or tiles ``(B, T, C, H, W)`` in the encoder's layout."""
        if x.ndim not in (4, 5):
            return x
        # The strides are spelt out: torch's `contiguous(memory_format=...)` keeps the
        # strides of a 1-channel batch whatever they are, and convolutions then pick
        # either layout. Tiles are channels-last within each tile, so that
        # `flatten(0, 1)` stays a view.
        if self.channels_last:
            *lead, C, H, W = x.shape
            n = len(lead)
            out = x.new_empty((*lead, H, W, C)).permute(*range(n), n + 2, n, n + 1)
        else:
            out = x.new_empty(x.shape)
        if out.stride() == x.stride():
            return x
        return out.copy_(x)

    def _check_images(self, X, reset):
        if reset:
            data = check_images(X, self.image_shape, estimator_name=type(self).__name__)
            if data.n_samples < 2:
                raise ValueError(
                    f"n_samples={data.n_samples}: {type(self).__name__} needs at least 2 "
                    "images to learn from."
                )
            self._check_image_shape(data.image_shape)
            return data
        return check_images(X, expected=self.image_shape_, estimator_name=type(self).__name__)

    def _load(self, data, rows, device, normalize=True):
        """Load rows as a (normalised,) method-prepared float batch on ``device``."""
        x = data.batch(rows, device)
        return self._prepare(self._normalize(x) if normalize else x)

    def _normalize(self, x):
        """Standardise a batch with the per-channel mean and std learnt at fit."""
        mean = torch.as_tensor(self.channel_mean_, device=x.device).view(1, -1, 1, 1)
        std = torch.as_tensor(self.channel_std_, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std

    @staticmethod
    def _autocast(device):
        if device.startswith("cuda"):
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _make_encoder(self, in_channels, image_size):
        kwargs = self.encoder_kwargs or {}
        if isinstance(self.encoder, str):
            return make_encoder(self.encoder, in_channels, image_size, **kwargs)
        if isinstance(self.encoder, nn.Module):
            if kwargs:
                raise ValueError(
                    "encoder_kwargs only applies to a named encoder or a factory; "
                    "configure the module instance before passing it."
                )
            encoder = copy.deepcopy(self.encoder)
        else:
            accepted = inspect.signature(self.encoder).parameters
            given = {"in_channels": in_channels, "image_size": image_size}
            encoder = self.encoder(**{k: v for k, v in given.items() if k in accepted}, **kwargs)
            if not isinstance(encoder, nn.Module):
                raise TypeError(
                    f"The encoder factory returned {type(encoder).__name__}; it must return "
                    "a torch.nn.Module."
                )
        # One dry batch turns a size mismatch deep inside torch into a clear error.
        n_features = self._dry_run_features(encoder, in_channels, image_size)
        declared = getattr(encoder, "num_features", None)
        if declared is None:
            encoder.num_features = n_features
        elif declared != n_features:
            raise ValueError(
                f"The encoder's num_features is {declared!r} but it returns {n_features} "
                "features; fix the attribute or remove it."
            )
        return encoder

    def _dry_run_features(self, encoder, in_channels, image_size):
        encoder.to(memory_format=self._memory_format).eval()
        try:
            with torch.no_grad():
                out = encoder(self._to_memory_format(torch.zeros(2, in_channels, *image_size)))
        except Exception as exc:
            hint = "are the images too small for it?"
            if self.channels_last:
                hint += (
                    " With channels_last=True, an encoder that calls .view on its "
                    "activations fails: use .reshape, or channels_last=False"
                )
            raise ValueError(
                f"The encoder failed on a batch of {image_size[0]}x{image_size[1]} images "
                f"with {in_channels} channel(s) ({hint}): {exc}"
            ) from exc
        finally:
            encoder.train()
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"The encoder must map (B, C, H, W) images to (B, n_features) features; "
                f"it returned {shape} for a batch of 2. Add global pooling and flatten."
            )
        return int(out.shape[1])

    def _check_encoder_takes(self, in_channels, image_size, input_size):
        """Check that an encoder trained on ``input_size`` inputs takes whole images."""
        problem = (
            f"{type(self).__name__} trains the encoder on {input_size[0]}x{input_size[1]} "
            f"inputs (patches or views) and transform applies it to whole "
            f"{image_size[0]}x{image_size[1]} images, so the encoder must take both sizes. "
            "Use an encoder that pools globally over any size, such as 'cnn' or 'resnet18'."
        )
        try:
            n_features = self._dry_run_features(self.encoder_, in_channels, image_size)
        except ValueError as exc:
            raise ValueError(f"{problem} On whole images it raised: {exc.__cause__}") from exc
        if n_features != self.encoder_.num_features:
            raise ValueError(
                f"{problem} It returns {self.encoder_.num_features} features on patches "
                f"but {n_features} on whole images."
            )

    def _make_optimizer(self, params):
        if self.optimizer == "sgd":
            return torch.optim.SGD(
                params, lr=self.learning_rate, momentum=0.9, weight_decay=self.weight_decay
            )
        cls = torch.optim.AdamW if self.optimizer == "adamw" else torch.optim.Adam
        return cls(params, lr=self.learning_rate, weight_decay=self.weight_decay)

    def _initialize(self, data):
        """Set the fitted state that a fresh fit starts from."""
        self.image_shape_ = data.image_shape
        self.n_features_in_ = data.n_features
        self._rng = check_random_state(self.random_state)
        mean, std = data.channel_mean_std()
        self.channel_mean_ = mean.astype(np.float32)
        self.channel_std_ = std.astype(np.float32)
        if self._make_batch_takes_raw:
            low, high = data.value_range()
            if low < 0 or high > 1:
                warnings.warn(
                    f"{type(self).__name__} augments images on the [0, 1] scale, but X has "
                    f"values in [{low:.3g}, {high:.3g}]: its colour augmentations clip them. "
                    "Pass uint8 images or floats scaled to [0, 1].",
                    UserWarning,
                    stacklevel=5,
                )
        H, W, C = data.image_shape
        size = tuple(self._prepare(torch.zeros(1, C, H, W)).shape[-2:])
        input_size = tuple(self._encoder_input_size(size))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._rng.randint(2**31 - 1))
            self.encoder_ = self._make_encoder(C, input_size)
            if input_size != size:
                self._check_encoder_takes(C, size, input_size)
            self.head_ = self._build_head(self.encoder_.num_features)
        self._generator_seed = int(self._rng.randint(2**31 - 1))
        self._generator_state = None
        self._optimizer_state = None
        self.loss_curve_ = []
        self.history_ = []
        self.n_iter_ = 0

    def _fit(self, X, n_epochs, reset):
        data = self._check_images(X, reset=reset)
        if reset:
            self._initialize(data)
        self.device_ = resolve_device(self.device)
        self._train(data, n_epochs)
        return self

    def _train(self, data, n_epochs):
        """The training loop shared by every method."""
        device = self.device_
        net = self._build_network(self.encoder_, self.head_)
        net = net.to(device, memory_format=self._memory_format)
        # Distributed training wraps `net` (DistributedDataParallel) and shards `order`
        # here, in `_train` alone.
        optimizer = self._make_optimizer(net.parameters())
        if self._optimizer_state is not None:
            optimizer.load_state_dict(self._optimizer_state)
        generator = torch.Generator(device=device)
        if self._generator_state is None:
            generator.manual_seed(self._generator_seed)
        else:
            generator.set_state(self._generator_state)

        net.train()
        start = time.perf_counter()
        out_of_time = False
        total_steps = n_epochs * len(_split_batches(np.arange(data.n_samples), self.batch_size))
        step = 0
        try:
            for _ in range(n_epochs):
                order = self._rng.permutation(data.n_samples)
                batches = _split_batches(order, self.batch_size)
                stats = {"loss": 0.0, "images": 0, "inputs": 0, "correct": 0, "count": 0}
                epoch_start = time.perf_counter()
                bar = tqdm(
                    total=data.n_samples,
                    desc=f"{type(self).__name__} epoch {self.n_iter_ + 1}",
                    disable=not self.verbose,
                    leave=True,
                )
                try:
                    for rows in batches:
                        # Set at every step, so that a restored optimizer state takes
                        # the current learning_rate.
                        lr = self._scheduled_lr(step, total_steps, time.perf_counter() - start)
                        for group in optimizer.param_groups:
                            group["lr"] = lr
                        step += 1
                        self._train_step(net, optimizer, data, np.sort(rows), generator, stats)
                        bar.update(len(rows))
                        if self.verbose:
                            seconds = time.perf_counter() - epoch_start
                            bar.set_postfix(
                                loss=f"{stats['loss'] / stats['images']:.4f}",
                                images_per_s=f"{stats['images'] / seconds:.0f}",
                            )
                        if self.max_time is not None and (
                            time.perf_counter() - start >= self.max_time
                        ):
                            out_of_time = True
                            break
                finally:
                    bar.close()
                    if stats["images"]:
                        self._record_epoch(stats, time.perf_counter() - epoch_start)
                if out_of_time:
                    break
        except KeyboardInterrupt:
            warnings.warn(
                "Training interrupted by the user; the model of the last completed batch "
                "is kept.",
                stacklevel=3,
            )
        finally:
            net.eval()
            self._optimizer_state = optimizer.state_dict()
            self._generator_state = generator.get_state()

    def _scheduled_lr(self, step, total_steps, seconds):
        if self.lr_schedule == "cosine":
            progress = step / total_steps
            if self.max_time is not None:
                progress = max(progress, seconds / self.max_time)
            return 0.5 * self.learning_rate * (1 + math.cos(math.pi * min(progress, 1.0)))
        return self.learning_rate

    def _train_step(self, net, optimizer, data, rows, generator, stats):
        x = self._load(data, rows, self.device_, normalize=not self._make_batch_takes_raw)
        inputs, targets = self._make_batch(x, generator)
        inputs = self._to_memory_format(inputs)
        with self._autocast(self.device_):
            outputs = net(inputs)
            loss = self._loss(outputs, targets)
        value = float(loss.detach())
        if not np.isfinite(value):
            raise FloatingPointError(
                f"The pretext loss became {value}; lower learning_rate "
                f"(now {self.learning_rate})."
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        stats["loss"] += value * len(rows)
        stats["images"] += len(rows)
        stats["inputs"] += inputs.shape[0] * (inputs.shape[1] if inputs.ndim == 5 else 1)
        with torch.no_grad():
            correct, count = self._count_correct(outputs.detach(), targets)
        stats["correct"] += correct
        stats["count"] += count

    def _record_epoch(self, stats, seconds):
        self.n_iter_ += 1
        loss = stats["loss"] / stats["images"]
        self.loss_curve_.append(loss)
        self.history_.append(
            {
                "epoch": self.n_iter_,
                "loss": loss,
                "seconds": seconds,
                "images": stats["images"],
                "images_per_s": stats["images"] / seconds,
                "inputs_per_s": stats["inputs"] / seconds,
                "pretext_accuracy": (
                    stats["correct"] / stats["count"] if stats["count"] else None
                ),
            }
        )
