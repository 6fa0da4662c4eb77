"""Save and load fitted estimators safely: weights in safetensors, the rest in JSON.

A model file is one `safetensors <https://huggingface.co/docs/safetensors>`_ file:
the tensors (the state dicts of ``encoder_`` and ``head_``, fitted arrays such as
``permutations_``, the optimiser's state) and, in its metadata, one JSON document: the
estimator's class name, its parameters, its fitted metadata, its training state (random
generators, schedule position), the skssl and torch versions, and a SHA-256 of every
tensor; a SHA-256 of the document itself sits next to it. An skssl estimator held by
another (a :class:`~skssl.BoWPretrainer`'s teacher, a :class:`~skssl.VisualBoW`'s
descriptor) is described in the same document. Loading parses JSON and raw
tensor bytes only: nothing is unpickled, nothing is imported by name, no code runs.
Checkpoints written during :meth:`~skssl.base.BasePretrainer.fit` have the same
format, so :func:`load` also reads them.
"""

import hashlib
import json
import os
import re
import uuid
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
from sklearn.base import BaseEstimator
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._distributed import is_writer

__all__ = ["load", "save"]

_FORMAT = "skssl-model"
_FORMAT_VERSION = 1
_DOCUMENT_KEY = "skssl"
_DOCUMENT_HASH_KEY = "skssl_sha256"
# Parameters that cannot be stored (a module, a function): the caller passes them back.
_PASSED_BACK = ("encoder", "task", "loss")
# Parameters not restored by `load`: a file must not choose where its model writes.
_NOT_LOADED = ("checkpoint", "checkpoint_every")
# The modules that `_build_modules` rebuilds, into which the saved weights are loaded.
_MODULES = ("encoder_", "head_")
# The private state that continues training exactly where it stopped.
_TRAINING_STATE = ("_rng", "_generator_seed", "_generator_state", "_optimizer_state")
_FITTED_NAME = re.compile(r"[a-z][a-z0-9_]*_")
_DOCUMENT_SCHEMA = {
    "format": str, "format_version": int, "class": str, "skssl_version": str,
    "torch_version": str, "params": dict, "passed_back": dict, "modules": list,
    "n_features_out": int, "fitted": dict, "training": dict, "sha256": dict,
}


def save(estimator, path):
    """Save a fitted skssl estimator to ``path``, safely (no pickle).

    This is the way to share a model. ``pickle`` and ``joblib`` files hold
    instructions, not data: ``joblib.load`` and ``pickle.load`` run whatever code the
    file asks for, so a model file from someone else can take over your account, and
    the model then works normally, with no warning. A file written by :func:`save`
    holds tensors and JSON only, and :func:`load` runs no code from it; a SHA-256 of
    every tensor and of the JSON document detects a file damaged on the way (a
    truncated download, a flipped byte). The hashes detect damage, not a deliberate
    edit: what makes a file from a stranger safe to load is that nothing in it runs.

    The file holds the weights (safetensors), the parameters, the fitted metadata,
    the training state (so that :meth:`~skssl.base.BasePretrainer.partial_fit` or a
    warm start continues as it would have), and the skssl and torch versions. A
    parameter that is a module or a function (an ``encoder`` module or factory, a
    ``task``, a callable ``loss``) is not stored: pass it back to :func:`load`. A
    ``random_state`` given as a RandomState instance is stored as None (the saved
    training state keeps its random stream). A teacher or descriptor that is a
    user's module cannot be stored. The file is written atomically: a
    temporary file in the same folder, flushed to disk, then renamed over ``path``.
    In a data-parallel run (``torchrun``), where every rank holds the same model, rank
    0 alone writes it; the others return without writing (call
    ``torch.distributed.barrier()`` before another rank reads the file).

    Parameters
    ----------
    estimator : BasePretrainer or VisualBoW
        A fitted estimator, one of skssl's public classes.
    path : str or path-like
        The file to write, e.g. ``"model.safetensors"``.

    Raises
    ------
    NotFittedError
        When the estimator is not fitted.
    TypeError
        When it is not one of skssl's public estimators, or a parameter or fitted
        attribute cannot be stored.

    See Also
    --------
    load : Read the model back.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_digits
    >>> import skssl
    >>> X = load_digits().images[:32]
    >>> est = skssl.RotationPretrainer(encoder_kwargs={"channels": (4,)}, max_epochs=1,
    ...                                random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "rotation.safetensors")
    >>> skssl.save(est, path)
    >>> bool((skssl.load(path).transform(X) == est.transform(X)).all())
    True
    """
    check_is_fitted(estimator)
    name = type(estimator).__name__
    if _estimator_classes().get(name) is not type(estimator):
        raise TypeError(
            f"skssl.save stores skssl's public estimators ({', '.join(_estimator_classes())}); "
            f"got {type(estimator).__module__}.{name}. Use one of them, or pickle at your "
            "own risk."
        )
    if is_writer():
        write_checkpoint(estimator, path)


def load(path, *, encoder=None, task=None, loss=None):
    """Load an estimator saved by :func:`save` (or a fit's checkpoint), running no code.

    The file is read as tensors and JSON: nothing is unpickled, the estimator's
    class is looked up by name in skssl's public estimators (never imported from
    the file), the estimator is rebuilt from its parameters and fitted metadata,
    its modules are built from them without data and the saved weights loaded into
    them (strictly: every tensor, every shape), and every tensor is checked against
    its SHA-256. The loaded estimator is fitted and transforms as the saved one did;
    it writes no checkpoint (``checkpoint`` is None) until you set one, so that a
    file never chooses where your machine writes.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`, or a ``checkpoint`` file.
    encoder : torch.nn.Module or callable, default=None
        The estimator's ``encoder`` when it was a module or a factory (not stored in
        the file): a module of the same architecture, or the same factory. Its
        weights are replaced by the saved ones; their shapes are checked.
    task : callable, default=None
        The ``task`` of a :class:`~skssl.PretextPretrainer`.
    loss : callable, default=None
        The ``loss`` of a :class:`~skssl.PretextPretrainer`, when it was a callable.

    Returns
    -------
    estimator : BasePretrainer or VisualBoW
        Fitted; modules in eval mode, on the CPU until used.

    Raises
    ------
    ValueError
        When the file is not an skssl model file (a pickle or joblib file among
        others), is truncated, has a changed byte or a missing tensor, was written
        by another major.minor version of skssl (rebuild it with that version, or
        refit), needs an argument that was not given, or when an argument does not
        fit the saved weights.

    See Also
    --------
    save : Why and what it saves.

    Examples
    --------
    A user module as encoder is passed back at load:

    >>> import os, tempfile
    >>> from sklearn.datasets import load_digits
    >>> from torch import nn
    >>> import skssl
    >>> def net():
    ...     return nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    >>> X = load_digits().images[:32]
    >>> est = skssl.RotationPretrainer(encoder=net(), max_epochs=1, random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "rotation.safetensors")
    >>> skssl.save(est, path)
    >>> loaded = skssl.load(path, encoder=net())
    >>> bool((loaded.transform(X) == est.transform(X)).all())
    True
    """
    document, tensors = _read(path)
    given = {"encoder": encoder, "task": task, "loss": loss}
    needed = document["passed_back"]
    for name, value in given.items():
        if value is None and name in needed:
            raise ValueError(
                f"{path} holds a {document['class']} whose {name} was {needed[name]}, which "
                f"is not stored in the file: pass it back, skssl.load(path, {name}=...)."
            )
        if value is not None and name not in needed:
            raise ValueError(
                f"{name}= was given, but the {document['class']} in {path} has "
                f"{name}={document['params'].get(name)!r}, stored in the file; pass {name} "
                "only for a model whose own was a module or a function."
            )
    return _rebuild(document, tensors, path, {k: given[k] for k in needed})


def write_checkpoint(estimator, path, progress=None):
    """Write the estimator's state to ``path`` atomically, in :func:`save`'s format.

    Parameters
    ----------
    estimator : BasePretrainer
        Fitted, or between two steps of a fit.
    path : str or path-like
    progress : dict, default=None
        Where the running call to fit stands (see :func:`skssl.training.train_epochs`);
        None outside a fit.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_digits
    >>> from skssl import RotationPretrainer
    >>> from skssl.persistence import read_checkpoint, write_checkpoint
    >>> X = load_digits().images[:32]
    >>> small = {"channels": (4,)}
    >>> est = RotationPretrainer(encoder_kwargs=small, max_epochs=1).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "state.safetensors")
    >>> write_checkpoint(est, path, {"epoch": 1, "complete": False})
    >>> read_checkpoint(RotationPretrainer(encoder_kwargs=small), path)
    {'epoch': 1, 'complete': False}
    """
    from . import __version__

    tensors = {}
    document = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "skssl_version": __version__,
        "torch_version": torch.__version__,
        **_describe_estimator(estimator, "", tensors),
        "progress": _encode(progress, "progress", tensors),
    }
    document["sha256"] = {name: _tensor_sha256(t) for name, t in tensors.items()}
    text = json.dumps(document)
    metadata = {_DOCUMENT_KEY: text, _DOCUMENT_HASH_KEY: _sha256(text.encode())}
    _write_atomically(Path(path), safetensors.torch.save(tensors, metadata=metadata))


def read_checkpoint(estimator, path):
    """Restore ``estimator`` (of the class that wrote ``path``) from a checkpoint file.

    The estimator keeps its own parameters; its fitted state, weights and training
    state come from the file.

    Parameters
    ----------
    estimator : BasePretrainer
    path : str or path-like

    Returns
    -------
    progress : dict or None
        Where the interrupted call to fit stood, or None when the file was written
        at the end of a call (or by :func:`save`).

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_digits
    >>> from skssl import RotationPretrainer
    >>> from skssl.persistence import read_checkpoint
    >>> path = os.path.join(tempfile.mkdtemp(), "fit.safetensors")
    >>> small = {"channels": (4,)}
    >>> est = RotationPretrainer(encoder_kwargs=small, max_epochs=2, checkpoint=path)
    >>> est = est.fit(load_digits().images[:32])
    >>> resumed = RotationPretrainer(encoder_kwargs=small)
    >>> read_checkpoint(resumed, path) is None, resumed.n_iter_  # the fit had ended
    (True, 2)
    """
    document, tensors = _read(path)
    if document["class"] != type(estimator).__name__:
        raise ValueError(
            f"The checkpoint {path} holds a {document['class']}, not a "
            f"{type(estimator).__name__}: set checkpoint to another file, or "
            "warm_start=False to start afresh (the file is then overwritten)."
        )
    _restore(estimator, document, tensors, path)
    progress = _decode(document.get("progress"), tensors, path)
    return None if progress is None or progress["complete"] else progress


# ---------------------------------------------------------------------- writing
def _describe_estimator(estimator, prefix, tensors):
    """The JSON description of an estimator; its tensors go to ``tensors`` under ``prefix``."""
    params, passed_back = _encode_params(estimator, prefix, tensors)
    state = {k: v for k, v in vars(estimator).items() if _is_fitted(k)}
    modules = [k for k in _MODULES if isinstance(state.get(k), nn.Module)]
    for name in modules:
        for key, value in state.pop(name).state_dict().items():
            _encode(value, f"{prefix}{name}.{key}", tensors)
    training = {k: getattr(estimator, k) for k in _TRAINING_STATE if hasattr(estimator, k)}
    if "_rng" in training:
        training["_rng"] = training["_rng"].get_state()
    try:
        fitted = _encode(state, f"{prefix}fitted", tensors)
    except TypeError as exc:
        raise TypeError(
            f"skssl.save cannot store the fitted {type(estimator).__name__}: {exc} (arrays, "
            "numbers, strings, skssl estimators and the encoder_ and head_ modules are)."
        ) from None
    return {
        "class": type(estimator).__name__,
        "prefix": prefix,
        "params": params,
        "passed_back": passed_back,
        "modules": modules,
        "n_features_out": int(estimator._n_features_out) if state or modules else None,
        "fitted": fitted,
        "training": _encode(training, f"{prefix}training", tensors),
    }


def _encode_params(estimator, prefix, tensors):
    params, passed_back = {}, {}
    for name, value in estimator.get_params(deep=False).items():
        if name == "random_state" and isinstance(value, np.random.RandomState):
            value = None
        elif isinstance(value, torch.device):
            value = str(value)
        elif isinstance(value, os.PathLike):
            value = os.fspath(value)
        arrays = {}
        try:
            params[name] = _encode(value, f"{prefix}params.{name}", arrays)
        except TypeError as exc:
            if name not in _PASSED_BACK or prefix:
                raise TypeError(
                    f"skssl.save cannot store the parameter {name} of "
                    f"{type(estimator).__name__}: {exc}. Numbers, strings, lists of them and "
                    "skssl estimators are stored; a module or a function only as the "
                    "encoder, task or loss of a saved pretrainer, passed back to load."
                ) from None
            passed_back[name] = _describe(value)
        tensors.update(arrays)  # the fitted state of an estimator parameter
    return params, passed_back


def _describe(value):
    if isinstance(value, nn.Module):
        return f"a module ({type(value).__name__})"
    return f"a function ({getattr(value, '__name__', type(value).__name__)})"


def _encode(value, key, tensors):
    """``value`` as JSON, with its tensors and arrays moved to ``tensors`` under ``key``.

    An skssl estimator (a BoW teacher, a VisualBoW descriptor) is described in full,
    and ``sklearn.frozen.FrozenEstimator`` around one is kept; any other object is
    refused.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return {"__scalar__": [value.dtype.str, value.item()]}
    if isinstance(value, torch.Tensor):
        # A fresh contiguous CPU copy: safetensors refuses views sharing memory.
        tensors[key] = value.detach().to("cpu").clone(memory_format=torch.contiguous_format)
        return {"__tensor__": key}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        tensors[key] = torch.from_numpy(np.array(value, order="C", copy=True))
        return {"__ndarray__": key}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{key}.{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{key}.{i}", tensors) for i, v in enumerate(value)]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: _encode(v, f"{key}.{k}", tensors) for k, v in value.items()}
        return {"__items__": [[_encode(k, f"{key}.{i}.key", tensors),
                               _encode(v, f"{key}.{i}", tensors)]
                              for i, (k, v) in enumerate(value.items())]}
    if isinstance(value, FrozenEstimator):
        return {"__frozen__": _encode(value.estimator, key, tensors)}
    if _estimator_classes().get(type(value).__name__) is type(value):
        return {"__estimator__": _describe_estimator(value, f"{key}.", tensors)}
    raise TypeError(f"{key} is a {type(value).__name__}, which is not stored")


def _write_atomically(path, blob):
    # A kill at any moment leaves either the old file or the new one, never half of one.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if os.name == "posix":  # make the rename itself durable
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


# ---------------------------------------------------------------------- reading
def _read(path):
    """The checked JSON document and tensors of a model file."""
    data = Path(path).read_bytes()
    not_ours = (
        f"{path} is not an skssl model file: skssl.load reads the files that skssl.save "
        "and fit's checkpoints write (safetensors with an skssl description). It never "
        "unpickles: a pickle or joblib file can run code when loaded."
    )
    size = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    if not 0 < size <= len(data) - 8:
        raise ValueError(f"{not_ours} (The file is truncated, or of another kind.)")
    try:
        metadata = json.loads(data[8 : 8 + size])["__metadata__"]
        text = metadata[_DOCUMENT_KEY]
        digest = metadata[_DOCUMENT_HASH_KEY]
    except (ValueError, TypeError, KeyError):
        raise ValueError(not_ours) from None
    if not isinstance(text, str) or _sha256(text.encode()) != digest:
        raise ValueError(
            f"{path} is corrupted: its description does not match its SHA-256 (a changed "
            "byte). Get the file again."
        )
    try:
        document = json.loads(text)
    except ValueError:
        raise ValueError(f"{path} is malformed: its description is not JSON.") from None
    malformed = [k for k, kind in _DOCUMENT_SCHEMA.items()
                 if not isinstance(document, dict) or not isinstance(document.get(k), kind)]
    if malformed or not set(document["passed_back"]) <= set(_PASSED_BACK):
        raise ValueError(f"{path} is malformed: entries {malformed or ['passed_back']} are wrong.")
    if document.get("format") != _FORMAT or document.get("format_version") != _FORMAT_VERSION:
        raise ValueError(
            f"{path} has format {document.get('format')!r} version "
            f"{document.get('format_version')!r}; this skssl reads {_FORMAT!r} version "
            f"{_FORMAT_VERSION}. Load it with the skssl that wrote it."
        )
    _check_version(document.get("skssl_version"), path)
    try:
        tensors = safetensors.torch.load(data)
    except Exception as exc:  # safetensors' own error: truncated or damaged data
        raise ValueError(
            f"The weights in {path} cannot be read ({exc}): the file is truncated or "
            "corrupted. Get the file again."
        ) from None
    expected = document["sha256"]
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise ValueError(
            f"{path} is corrupted: tensors {missing[:5]} are missing and {extra[:5]} are "
            "unexpected. Get the file again."
        )
    for name, tensor in tensors.items():
        if _tensor_sha256(tensor) != expected[name]:
            raise ValueError(
                f"{path} is corrupted: the tensor {name!r} does not match its SHA-256 (a "
                "changed byte). Get the file again."
            )
    return document, tensors


def _check_version(saved, path):
    from . import __version__

    if str(saved).split(".")[:2] != __version__.split(".")[:2]:
        raise ValueError(
            f"{path} was written by skssl {saved}, and this is skssl {__version__}: "
            "versions with another major.minor may build or train models differently. "
            f"Load it with skssl {saved} and refit, or fit again with this version."
        )


def _rebuild(document, tensors, path, passed_back=None):
    """A new estimator from its description, and the arguments passed back to load."""
    if not isinstance(document, dict) or not isinstance(document.get("class"), str):
        raise ValueError(f"{path} is malformed: an estimator without a class.")
    cls = _estimator_classes().get(document["class"])
    if cls is None:
        raise ValueError(
            f"{path} holds a {document['class']!r}, which is not one of skssl's public "
            f"estimators ({', '.join(_estimator_classes())}); skssl.load builds those only."
        )
    passed_back = passed_back or {}
    params = {**_decode(document["params"], tensors, path), **passed_back}
    params.update({k: None for k in _NOT_LOADED if k in params})
    for name, value in getattr(cls, "_defaults_before", {}).items():
        params.setdefault(name, value)  # a file written before the parameter existed
    try:
        estimator = cls(**params)
        estimator._validate_params()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"The parameters in {path} do not fit {cls.__name__}: {exc}") from None
    _restore(estimator, document, tensors, path, sorted(passed_back))
    return estimator


def _restore(estimator, document, tensors, path, passed_back=()):
    """Set the fitted state of ``document`` on ``estimator``; build and load its modules."""
    fitted = _decode(document["fitted"], tensors, path)
    if not isinstance(fitted, dict) or not all(
        isinstance(k, str) and _is_fitted(k) for k in fitted
    ):
        raise ValueError(f"{path} has fitted attributes that skssl never writes.")
    if not fitted:  # an unfitted estimator parameter
        return
    for name, value in fitted.items():
        setattr(estimator, name, value)
    blame = (
        f" the {' and '.join(passed_back)} passed to load does not fit the saved model "
        "(another architecture?):" if passed_back else ""
    )
    modules = document["modules"]
    if not set(modules) <= set(_MODULES) or (modules and not hasattr(estimator, "_build_modules")):
        raise ValueError(f"{path} has modules that skssl never writes.")
    prefix = document.get("prefix", "")
    try:
        if modules:
            estimator._build_modules(0)
        for name in modules:
            start = f"{prefix}{name}."
            state = {k[len(start):]: t for k, t in tensors.items() if k.startswith(start)}
            module = getattr(estimator, name)
            module.load_state_dict(state, strict=True)
            module.eval()
    except (ValueError, TypeError, RuntimeError) as exc:
        raise ValueError(f"{path} cannot be loaded:{blame} {exc}") from None
    if estimator._n_features_out != document["n_features_out"]:
        raise ValueError(
            f"{path} cannot be loaded:{blame} the model gives {estimator._n_features_out} "
            f"features, the saved one {document['n_features_out']}."
        )
    training = _decode(document["training"], tensors, path)
    if not set(training) <= set(_TRAINING_STATE):
        raise ValueError(f"{path} has training state that skssl never writes.")
    for name, value in training.items():
        if name == "_rng":
            rng = np.random.RandomState()
            try:
                rng.set_state(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path} is malformed: {exc!r}.") from None
            value = rng
        setattr(estimator, name, value)


def _decode(value, tensors, path):
    """The inverse of :func:`_encode`; a clear error for a document skssl did not write."""
    try:
        return _decode_value(value, tensors, path)
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ValueError(f"{path} is malformed: {exc!r}.") from None


def _decode_value(value, tensors, path):
    if isinstance(value, list):
        return [_decode_value(v, tensors, path) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (tag, content), = value.items()
        if tag == "__tuple__":
            return tuple(_decode_value(v, tensors, path) for v in content)
        if tag == "__tensor__":
            return tensors[content]
        if tag == "__ndarray__":
            return tensors[content].numpy()
        if tag == "__scalar__":
            dtype = np.dtype(content[0])
            if dtype.kind not in "biuf":
                raise ValueError(f"{path} is malformed: a number of dtype {dtype}.")
            return dtype.type(content[1])
        if tag == "__items__":
            return {_decode_value(k, tensors, path): _decode_value(v, tensors, path)
                    for k, v in content}
        if tag == "__frozen__":
            return FrozenEstimator(_decode_value(content, tensors, path))
        if tag == "__estimator__":
            return _rebuild(content, tensors, path)
    return {k: _decode_value(v, tensors, path) for k, v in value.items()}


# ---------------------------------------------------------------------- helpers
def _estimator_classes():
    """skssl's public estimators by name: the only classes :func:`load` builds."""
    import skssl

    from .base import BasePretrainer

    classes = (getattr(skssl, name) for name in skssl.__all__)
    return {
        cls.__name__: cls for cls in classes
        if isinstance(cls, type) and issubclass(cls, BaseEstimator) and cls is not BasePretrainer
    }


def _is_fitted(name):
    return _FITTED_NAME.fullmatch(name) is not None


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _tensor_sha256(tensor):
    digest = hashlib.sha256(f"{tensor.dtype} {tuple(tensor.shape)}".encode())
    digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()
