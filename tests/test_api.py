"""The shape every pretrainer shares: signatures, parameter docs, and the closed set of hooks."""

import inspect
import re
from pathlib import Path

import pytest
from numpydoc.docscrape import ClassDoc
from sklearn.utils._testing import assert_docstring_consistency

import skssl
from skssl.base import COMMON_PARAMETERS, BasePretrainer, parameter_names

ESTIMATORS = [
    getattr(skssl, name)
    for name in skssl.__all__
    if isinstance(getattr(skssl, name), type)
    and issubclass(getattr(skssl, name), BasePretrainer)
    and getattr(skssl, name) is not BasePretrainer
]
COMMON = parameter_names(COMMON_PARAMETERS)

# What a method may define: its parameters and docs, and the hooks of BasePretrainer.
HOOKS = {
    "_check_image_shape", "_prepare", "_encoder_input_size", "_encoder_kwargs",
    "_fit_method_state",
    "_make_batch", "_build_head", "_build_network", "_loss", "_count_correct",
    "_train_step", "_embed",
}
CLASS_DATA = {
    "__init__", "__doc__", "__module__", "__qualname__", "__firstlineno__",
    "__static_attributes__", "_parameter_constraints", "_parameter_notes",
    "_attribute_notes", "_make_batch_takes_raw", "_network_parameters",
    # set on every subclass by Python and by scikit-learn's set_output machinery
    "__annotations__", "_sklearn_auto_wrap_output_keys",
}
ROOT = Path(__file__).parent.parent


def _required(cls):
    return [
        name for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and p.default is inspect.Parameter.empty
    ]


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_signature_common_parameters_first_method_parameters_last(cls):
    names = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    required = _required(cls)  # positional (PretextPretrainer's task, n_outputs) lead
    assert names[: len(required)] == required
    assert names[len(required) : len(required) + len(COMMON)] == COMMON
    base = inspect.signature(BasePretrainer.__init__).parameters
    own = inspect.signature(cls.__init__).parameters
    different = {n for n in COMMON if own[n].default != base[n].default}
    # ContextPretrainer: batches of 512; MAEPretrainer: a ViT, since it needs patch tokens;
    # SimCLR, intruder, jigsaw and context: the measured cosine decay of a larger rate; intruder:
    # the measured weight decay of 0.05
    allowed = {"batch_size", "encoder", "learning_rate", "lr_schedule", "pooling",
               "weight_decay"}
    assert different <= allowed, different


@pytest.mark.parametrize("cls", [BasePretrainer, *ESTIMATORS], ids=lambda c: c.__name__)
def test_parameter_docs_follow_the_signature(cls):
    signature = inspect.signature(cls.__init__).parameters
    documented = ClassDoc(cls)["Parameters"]
    assert [p.name for p in documented] == [n for n in signature if n != "self"]
    for p in documented:
        default = signature[p.name].default
        if default is not inspect.Parameter.empty:
            assert f"default={default!r}".replace("'", '"') in p.type, p.name
    assert "%(" not in cls.__doc__


def test_shared_parameters_documented_alike():
    noted = {name for cls in ESTIMATORS for name in cls._parameter_notes}
    assert_docstring_consistency(
        [BasePretrainer, *ESTIMATORS],
        include_params=[name for name in COMMON if name not in noted],
        include_attrs=["encoder_", "loss_curve_", "n_iter_", "n_features_in_", "device_"],
    )


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_methods_fill_hooks_only(cls):
    # A method defines hooks, and helpers of its own; it overrides nothing else of the
    # base class (the loop, fit, transform, _initialize, ...).
    overridden = (set(vars(cls)) - CLASS_DATA - HOOKS) & set(dir(BasePretrainer))
    assert not overridden


@pytest.mark.parametrize("folder", ["benchmarks", "examples"])
def test_scripts_use_public_names_only(folder):
    for path in sorted((ROOT / folder).glob("*.py")):
        text = path.read_text()
        assert not re.findall(r"\._[a-z]\w*", text), path.name
        assert not re.findall(r"skssl(?:\.\w+)*\._", text), path.name
