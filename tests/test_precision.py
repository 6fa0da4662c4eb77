"""``precision``: bfloat16 mixed precision where the device has it natively."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.utils._param_validation import InvalidParameterError

import skssl
from skssl.device import autocast, native_bfloat16, resolve_precision
from skssl.losses import NTXentLoss

FAST = dict(encoder_kwargs={"channels": (8, 16)}, batch_size=50, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def digits():
    return (load_digits().images[:200] / 16).astype(np.float32)


def test_resolve_precision(monkeypatch):
    assert resolve_precision("float32", "cpu") == "float32"
    assert resolve_precision("bfloat16", "cpu") == "bfloat16"
    # conftest resolves "auto" as on a CPU without native bfloat16
    assert resolve_precision("auto", "cpu") == "float32"
    monkeypatch.setattr("skssl.device.native_bfloat16", lambda device: True)
    assert resolve_precision("auto", "cpu") == "bfloat16"
    with pytest.raises(ValueError, match="'auto', 'float32' or 'bfloat16'"):
        resolve_precision("float16", "cpu")


def test_native_bfloat16_is_a_bool():
    # the function itself (imported before conftest patches the module's name):
    # whatever this CPU has; MPS never counts as native
    assert isinstance(native_bfloat16("cpu"), bool)
    assert native_bfloat16("mps") is False


def test_autocast_follows_precision():
    a = torch.ones(2, 2)
    with autocast("cpu", "bfloat16"):
        assert (a @ a).dtype == torch.bfloat16
    with autocast("cpu", "float32"):
        assert (a @ a).dtype == torch.float32


def test_nt_xent_stays_float32_under_bfloat16():
    torch.manual_seed(0)
    z_a, z_b = torch.randn(8, 16), torch.randn(8, 16)
    loss = NTXentLoss(temperature=0.1)
    expected = loss(z_a, z_b)
    with autocast("cpu", "bfloat16"):
        got = loss(z_a, z_b)
    assert got.dtype == torch.float32
    assert float(got) == pytest.approx(float(expected), rel=1e-6)


@pytest.mark.parametrize("cls", [skssl.RotationPretrainer, skssl.SimCLRPretrainer])
def test_bfloat16_fit_trains_and_transforms_in_float32(digits, cls):
    est = cls(max_epochs=3, precision="bfloat16", **FAST).fit(digits)
    assert all(np.isfinite(est.loss_curve_))
    assert est.loss_curve_[-1] < est.loss_curve_[0]
    assert all(p.dtype == torch.float32 for p in est.encoder_.parameters())
    features = est.transform(digits[:20])
    assert features.dtype == np.float32
    # the same weights in float32: features agree to bfloat16's rounding
    exact = est.set_params(precision="float32").transform(digits[:20])
    np.testing.assert_allclose(features, exact, rtol=0.05, atol=0.05 * np.abs(exact).max())


def test_bfloat16_loss_follows_float32(digits):
    # the same first steps in both precisions: the losses agree to a few per cent
    curves = [skssl.RotationPretrainer(max_epochs=2, precision=p, **FAST).fit(digits).loss_curve_
              for p in ("float32", "bfloat16")]
    np.testing.assert_allclose(curves[1], curves[0], rtol=0.05)


def test_unknown_precision_is_refused(digits):
    est = skssl.RotationPretrainer(precision="float16", **FAST)
    with pytest.raises(InvalidParameterError, match="precision"):
        est.fit(digits)
    assert not hasattr(est, "encoder_")


@pytest.mark.parametrize("isa", ["AVX2", "avx512_core"])
def test_onednn_limited_below_bfloat16_counts_as_without(monkeypatch, isa):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
    assert native_bfloat16("cpu") is False
    assert resolve_precision("auto", "cpu") == "float32"
