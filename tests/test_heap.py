"""reuse_freed_memory: freed blocks are reused within a training loop (glibc only)."""

import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

import skssl._heap as heap
from skssl import RotationPretrainer
from skssl._heap import FaultWatch, reuse_freed_memory

glibc = pytest.mark.skipif(heap._LIBC is None, reason="needs glibc's malloc")


# Page faults depend on what the process's heap holds already (free blocks left by the
# loops of earlier tests serve large tensors without mmap), so they are counted in a
# fresh interpreter.
_COUNT = """
import resource, torch
from skssl.device import reuse_freed_memory

def faults(n=8, mb=64):
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        x = torch.ones(mb * 2**18)
        del x
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start

outside = faults()
with reuse_freed_memory():
    with reuse_freed_memory():
        pass
    faults()  # grows the heap to hold the block
    inside = faults()
print(outside, inside)
"""


@glibc
def test_freed_blocks_are_reused_in_the_block():
    pages = 64 * 2**20 // 4096
    out = subprocess.run([sys.executable, "-c", _COUNT], capture_output=True, text=True,
                         check=True).stdout
    outside, inside = map(int, out.split())
    # Outside, each of the 8 tensors is a fresh mapping; inside (after a nested block
    # ended: it does not undo the outer one), the freed block is reused.
    assert outside > 6 * pages
    assert inside < 2 * pages


@glibc
def test_nested_and_concurrent_blocks_share_one_setting():
    with reuse_freed_memory():
        with reuse_freed_memory():
            assert heap._depth == 2
        assert heap._depth == 1
    assert heap._depth == 0

    errors = []

    def run():
        try:
            with reuse_freed_memory():
                torch.ones(2**20).sum()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and heap._depth == 0


def test_disabled_block_changes_nothing():
    with reuse_freed_memory(enabled=False):
        assert heap._depth == 0


def test_an_exception_leaves_the_setting_undone():
    with pytest.raises(RuntimeError, match="boom"):
        with reuse_freed_memory():
            raise RuntimeError("boom")
    assert heap._depth == 0


@pytest.mark.parametrize("env", [
    {"SKSSL_REUSE_FREED_MEMORY": "0"},
    {"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"},
    {"MALLOC_MMAP_MAX_": "0"},
    {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1000"},
])
def test_the_users_own_malloc_settings_are_left_alone(monkeypatch, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert heap._glibc() is None


def test_fit_and_transform_leave_no_block_open():
    X = np.random.default_rng(0).random((64, 8, 8)).astype(np.float32)
    est = RotationPretrainer(encoder_kwargs={"channels": (4,)}, max_epochs=1,
                             batch_size=32, random_state=0, device="cpu")
    est.fit(X).transform(X)
    est.score(X)
    assert heap._depth == 0
    with pytest.raises(ValueError):
        est.fit(np.full((64, 8, 8), np.nan, dtype=np.float32))
    assert heap._depth == 0


_WATCH = """
import torch
import skssl._heap as heap
from skssl.device import FaultWatch

with FaultWatch() as watch:
    for step in range(8):
        x = torch.ones(2**24)  # 64 MB: unmapped when freed, faulted in afresh
        del x
        watch.step_done()
        print(int(watch.reusing), heap._depth)
print(heap._depth)
"""


@glibc
def test_fault_watch_turns_the_reuse_on_once_steps_fault():
    out = subprocess.run([sys.executable, "-c", _WATCH], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    # The first step does not count; 3 faulting steps in a row (steps 1-3) do.
    assert out[:8] == ["0 0"] * 3 + ["1 1"] * 5
    assert out[8] == "0"


@glibc
def test_fault_watch_leaves_malloc_alone_when_steps_do_not_fault():
    with FaultWatch() as watch:
        for _ in range(8):
            torch.ones(2**16).sum()  # 256 KB: recycled by glibc
            watch.step_done()
        assert not watch.reusing and heap._depth == 0


def test_a_disabled_fault_watch_never_turns_on():
    with FaultWatch(enabled=False) as watch:
        for _ in range(5):
            torch.ones(2**24).sum()
            watch.step_done()
        assert not watch.reusing
    assert heap._depth == 0
