"""The ``skssl`` command line: pretrain on images from disk, transform, inspect a model.

``skssl fit`` trains a pretrainer on a ``.npy`` array or a folder of image files and
saves it with :func:`skssl.save`; ``skssl transform`` loads it with :func:`skssl.load`
and writes the features of images as a ``.npy`` array; ``skssl info`` describes a
saved model. ``python -m skssl`` is the same program.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from . import (
    BoWPretrainer,
    ContextPretrainer,
    IntruderPretrainer,
    JigsawPretrainer,
    MAEPretrainer,
    RotationPretrainer,
    SimCLRPretrainer,
    load,
    save,
)
from .datasets import load_image_folder

__all__ = ["METHODS", "main"]

#: The estimator that each ``--method`` name trains.
METHODS = {
    "rotation": RotationPretrainer,
    "jigsaw": JigsawPretrainer,
    "context": ContextPretrainer,
    "intruder": IntruderPretrainer,
    "simclr": SimCLRPretrainer,
    "mae": MAEPretrainer,
    "bow": BoWPretrainer,
}

# The options of `fit` that set an estimator parameter, by option destination.
_OPTION_PARAMS = {
    "epochs": "max_epochs",
    "max_time": "max_time",
    "random_state": "random_state",
    "verbose": "verbose",
}


class _UsageError(Exception):
    """A mistake of the user's: reported in one line, with exit status 2."""


def main(argv=None):
    """Run the ``skssl`` command line (``skssl`` or ``python -m skssl``).

    Commands:

    - ``skssl fit --method NAME --data X.npy|FOLDER --out MODEL [--epochs N]
      [--max-time S] [--params JSON] [--image-size N|HxW] [--color-mode MODE]
      [--random-state N] [--verbose|--no-verbose]``: fit one of the :data:`METHODS`
      on a ``.npy`` array (memory-mapped, never unpickled) or on a folder of images
      (:func:`skssl.datasets.load_image_folder`), and save it with :func:`skssl.save`.
      ``--params`` sets any parameter of the estimator, as a JSON object. The progress
      bar shows when standard error is a terminal, or with ``--verbose``.
    - ``skssl transform --model MODEL --data X.npy|FOLDER --out FEATURES.npy``: the
      features of the images (:meth:`~skssl.base.BasePretrainer.transform`), saved
      with ``numpy.save``. The images of a folder are read at the model's image size
      and colour mode, in the sorted order of their files.
    - ``skssl info --model MODEL``: the estimator, its parameters and fitted facts.

    Mistakes (a missing or unreadable file, an unknown method, bad ``--params``, a
    file that is not a saved skssl model, data the estimator refuses) are reported in
    one line on standard error, with exit status 2.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments, without the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    status : int
        0 on success, 2 on a mistake in the arguments or the files.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skssl.cli import main
    >>> folder = tempfile.mkdtemp()
    >>> data = os.path.join(folder, "digits.npy")
    >>> np.save(data, load_digits().images[:64])
    >>> model = os.path.join(folder, "model.skssl")
    >>> main(["fit", "--method", "rotation", "--data", data, "--out", model, "--epochs",
    ...       "1", "--random-state", "0", "--params", '{"encoder_kwargs": {"channels": [4]}}'])
    RotationPretrainer: 1 epoch(s) on 64 images of shape (8, 8, 1), loss ..., saved to ...
    0
    >>> main(["transform", "--model", model, "--data", data,
    ...       "--out", os.path.join(folder, "features.npy")])
    Features of shape (64, 20) saved to ...features.npy
    0
    >>> main(["fit", "--method", "rotatoin", "--data", data, "--out", model])
    2
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0), or argparse's one-line usage error (2)
        return exc.code
    try:
        args.run(args)
    except (_UsageError, OSError, ValueError, TypeError) as exc:
        message = " ".join(str(exc).split())  # one line, whatever the message
        print(f"skssl {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0


# ---------------------------------------------------------------------- commands
def _fit(args):
    cls = METHODS[args.method]
    params = _params(args)
    _check_writable(args.out)
    X = _read_data(args.data, image_size=args.image_size, color_mode=args.color_mode)
    estimator = cls()
    try:
        estimator.set_params(**params)
    except ValueError as exc:  # an unknown parameter: sklearn lists the valid ones
        raise _UsageError(f"--params: {exc}") from None
    estimator.fit(X)
    save(estimator, args.out)
    print(
        f"{cls.__name__}: {estimator.n_iter_} epoch(s) on {len(X)} images of shape "
        f"{estimator.image_shape_}, loss {estimator.loss_curve_[-1]:.4f}, saved to {args.out}"
    )


def _transform(args):
    model = _load_model(args.model)
    _check_writable(args.out)
    size = color_mode = None
    if Path(args.data).is_dir():  # read the images as the model was fitted on them
        height, width, channels = model.image_shape_
        size = (height, width)
        color_mode = {1: "grayscale", 3: "rgb"}.get(channels)
        if color_mode is None:
            raise _UsageError(
                f"{args.model} was fitted on images of {channels} channels; a folder of "
                "image files gives 1 (grayscale) or 3 (RGB). Pass a .npy array."
            )
    X = _read_data(args.data, image_size=size, color_mode=color_mode, option=None)
    features = model.transform(X)
    np.save(args.out, features)
    print(f"Features of shape {features.shape} saved to {args.out}")


def _info(args):
    model = _load_model(args.model)
    print(repr(model))  # scikit-learn shows the parameters that differ from the defaults
    facts = {"features out": len(model.get_feature_names_out())}
    for name in ("image_shape_", "n_features_in_", "input_scale_", "n_iter_", "device_"):
        if hasattr(model, name):
            facts[name] = getattr(model, name)
    if getattr(model, "history_", None):
        last = model.history_[-1]
        facts["last epoch"] = ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in last.items()
        )
    for name, value in facts.items():
        print(f"  {name}: {value}")


# ---------------------------------------------------------------------- helpers
def _params(args):
    """The estimator parameters of ``--params`` and of the options that set one."""
    params = {}
    if args.params is not None:
        try:
            params = json.loads(args.params)
        except json.JSONDecodeError as exc:
            raise _UsageError(f"--params is not valid JSON ({exc}): {args.params}") from None
        if not isinstance(params, dict):
            raise _UsageError(
                f"--params must be a JSON object of estimator parameters, e.g. "
                f"'{{\"batch_size\": 64}}'; got {args.params}"
            )
    for option, name in _OPTION_PARAMS.items():
        value = getattr(args, option)
        if value is None:
            continue
        if name in params:
            raise _UsageError(
                f"{name} is set both by --{option.replace('_', '-')} and by --params; "
                "give it once."
            )
        params[name] = int(value) if name == "verbose" else value
    # The progress bar goes to standard error: show it where someone watches.
    params.setdefault("verbose", int(sys.stderr.isatty()))
    return params


def _read_data(path, *, image_size=None, color_mode=None, option="--image-size"):
    """Images from a ``.npy`` file (memory-mapped) or a folder of image files."""
    data = Path(path)
    if not data.exists():
        raise _UsageError(f"--data {path} does not exist.")
    if data.is_dir():
        return load_image_folder(data, image_size=image_size,
                                 color_mode=color_mode or "auto").images
    if data.suffix.lower() != ".npy":
        raise _UsageError(
            f"--data {path} is neither a .npy file (numpy.save) nor a folder of images."
        )
    if option is not None and (image_size is not None or color_mode is not None):
        raise _UsageError(
            "--image-size and --color-mode apply to a folder of images, not to a .npy array."
        )
    try:
        return np.load(data, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise _UsageError(f"--data {path} cannot be read as a .npy array: {exc}") from None


def _load_model(path):
    if not Path(path).is_file():
        raise _UsageError(f"--model {path} does not exist or is not a file.")
    return load(path)


def _check_writable(path):
    """Fail before a long computation, not after it, when ``path`` cannot be written."""
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise _UsageError(f"--out {path} is a folder; give a file name.")
    if not folder.is_dir():
        raise _UsageError(f"--out {path}: the folder {folder} does not exist.")
    if not os.access(folder, os.W_OK):
        raise _UsageError(f"--out {path}: the folder {folder} is not writable.")


def _image_size(text):
    """``N`` or ``HxW`` as an int or a (height, width) pair."""
    try:
        sizes = [int(v) for v in text.lower().split("x")]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2) or min(sizes) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a size in pixels, N or HEIGHTxWIDTH (e.g. 32 or 32x48), got {text!r}"
        )
    return sizes[0] if len(sizes) == 1 else tuple(sizes)


def _method_list():
    lines = []
    for name, cls in METHODS.items():
        summary = cls.__doc__.strip().splitlines()[0].removeprefix("Learn image features ")
        lines.append(f"  {name:<9} {cls.__name__}, learns {summary}")
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line, where argparse would print the whole usage first.
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _parser():
    parser = _Parser(
        prog="skssl",
        description="Self-supervised learning on images: pretrain an encoder on unlabelled "
        "images, then turn images into features.",
        epilog="Run 'skssl COMMAND --help' for the options of a command.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data_help = ("a .npy array of images, (n, H, W), (n, H, W, C) or (n, H*W*C), or a folder "
                 "of image files (PNG, JPEG, ...; subfolders are classes, ignored here)")

    fit = commands.add_parser(
        "fit", help=f"pretrain an encoder ({', '.join(METHODS)}) and save the model",
        description="Fit a pretrainer on unlabelled images and save it with skssl.save.",
        epilog="methods:\n" + _method_list() + "\n\nexample:\n  skssl fit --method rotation "
        "--data images/ --image-size 32 --epochs 10 --out rotation.skssl\n  skssl fit "
        "--method simclr --data X.npy --out simclr.skssl --params '{\"batch_size\": 128}'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fit.add_argument("--method", required=True, choices=list(METHODS), metavar="METHOD",
                     help="the pretext task: " + ", ".join(METHODS) + " (see below)")
    fit.add_argument("--data", required=True, help=data_help)
    fit.add_argument("--out", required=True, help="the model file to write (skssl.save)")
    fit.add_argument("--epochs", type=int, help="passes over the data (max_epochs)")
    fit.add_argument("--max-time", type=float, metavar="SECONDS",
                     help="time budget of the training in seconds (max_time)")
    fit.add_argument("--params", metavar="JSON",
                     help="estimator parameters as a JSON object, e.g. "
                     "'{\"encoder\": \"resnet18\", \"batch_size\": 128}'")
    fit.add_argument("--image-size", type=_image_size, metavar="N|HxW",
                     help="resize the images of a folder to N x N (or H x W) pixels; needed "
                     "when they differ in size")
    fit.add_argument("--color-mode", choices=["auto", "grayscale", "rgb"],
                     help="how to read the images of a folder (default: auto, grayscale when "
                     "they all are)")
    fit.add_argument("--random-state", type=int, metavar="N",
                     help="seed: the same seed on the CPU gives the same model")
    fit.add_argument("--verbose", action=argparse.BooleanOptionalAction,
                     help="show the progress bar (default: when standard error is a terminal)")
    fit.set_defaults(run=_fit)

    transform = commands.add_parser(
        "transform", help="turn images into features with a saved model",
        description="Load a model saved by 'skssl fit' (or skssl.save) and save the "
        "features of images as a .npy array of shape (n, n_features), in the order of the "
        "array's rows or of the folder's sorted files.",
    )
    transform.add_argument("--model", required=True, help="a model file written by skssl.save")
    transform.add_argument("--data", required=True,
                           help=data_help + "; a folder is read at the model's image size")
    transform.add_argument("--out", required=True, help="the .npy file to write")
    transform.set_defaults(run=_transform)

    info = commands.add_parser("info", help="describe a saved model",
                               description="Print a saved model's class, its parameters "
                               "that differ from the defaults, and what it learnt from.")
    info.add_argument("--model", required=True, help="a model file written by skssl.save")
    info.set_defaults(run=_info)
    return parser
