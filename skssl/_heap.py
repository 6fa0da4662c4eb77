"""Keep freed memory for the next training step instead of handing it back to Linux.

On Linux, glibc's ``malloc`` serves every allocation above 32 MiB (and, until its
adaptive threshold has grown, above 128 KiB) with a fresh ``mmap`` and unmaps it when it
is freed. A training step on the CPU allocates and frees the same large activations
at every step (a batch of 512 views of the reference CNN in float32: 51 MB per
32-channel 28x28 activation), so each step faults in and zeroes hundreds of MB of new
pages: on 2 cores of an AMD EPYC, 111,000 page faults per step and a third of the
step's time (732 views/s; 1,118 without them). The training loop, ``transform`` and
``score`` count each step's page faults (:class:`FaultWatch`), and once steps fault in
more than 32 MiB each, the rest of the loop runs inside :func:`reuse_freed_memory`,
which turns ``mmap`` off and raises the trim threshold, so that freed blocks stay in the
heap and the next step reuses them; on the way out it lets large blocks use
``mmap`` again and lowers the trim threshold to 64 MiB, so that the free top of the heap
goes back to Linux at the next ``free`` (of anything) beyond that. It does not call
``malloc_trim``: that also releases the free blocks inside the heap, and the next call
(``partial_fit`` in a loop, or ``transform`` after ``fit``) would fault them all in
again: with it, 8-batch ``partial_fit`` calls of SimCLR ran no faster than without
the reuse.

It does nothing where glibc is not the C library (macOS, Windows, musl), or where the
user chose these settings themselves (the ``glibc.malloc.mmap_*`` or ``trim_threshold``
tunables in ``GLIBC_TUNABLES``, or ``MALLOC_MMAP_MAX_``, ``MALLOC_MMAP_THRESHOLD_`` or
``MALLOC_TRIM_THRESHOLD_``) or preloaded another allocator (jemalloc, tcmalloc or
mimalloc in ``LD_PRELOAD``), or turned it off (``SKSSL_REUSE_FREED_MEMORY=0``, read at
import). The cost is memory: a process's peak resident memory is higher by the blocks
the heap keeps (1.66 GB against 1.39 GB for the process of a
SimCLR fit in float32, batches of 256, 6,000 images in memory), and right after a fit
by the heap's free top until the next ``free`` hands it back (1,581 against 1,375 MB
after a fit on 3,000 images; 1,389 after freeing an 80-MB array).
"""

import contextlib
import ctypes
import os
import platform
import sys
import threading

try:
    import resource
except ImportError:  # Windows: no glibc either
    resource = None

# mallopt's parameter numbers (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
# glibc's default M_MMAP_MAX.
_MMAP_MAX_DEFAULT = 65536
# The trim threshold after the loop. Setting any mallopt parameter turns glibc's
# adaptive thresholds off for good; 64 MiB is where they settle in a process that has
# freed large tensors (twice the largest adaptive mmap threshold, 32 MiB).
_TRIM_AFTER = 64 * 1024 * 1024
# While the loop runs: keep up to 2 GiB of free memory at the top of the heap.
_TRIM_DURING = 2**31 - 1

_lock = threading.Lock()
_depth = 0


def _glibc():
    """glibc's ``libc.so.6``, or ``None`` where it is not the C library or the user set
    the allocator up themselves."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    env = os.environ
    if env.get("SKSSL_REUSE_FREED_MEMORY") == "0":
        return None
    if "malloc" in env.get("LD_PRELOAD", "") or any(
            k in env for k in ("MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_",
                               "MALLOC_TRIM_THRESHOLD_")):
        return None
    if any(t in env.get("GLIBC_TUNABLES", "") for t in ("malloc.mmap", "malloc.trim")):
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


_LIBC = _glibc()


@contextlib.contextmanager
def reuse_freed_memory(enabled=True):
    """Within this block, freed memory is kept for reuse instead of unmapped (glibc).

    Nested and concurrent blocks (fits in threads) share one setting: the first to
    enter sets it, the last to leave undoes it. The free blocks the heap keeps when the
    block ends are there for the next call; the top of the heap goes back to Linux at
    the next ``free`` once it is over 64 MiB.

    Parameters
    ----------
    enabled : bool, default=True
        ``False`` makes the block do nothing (a loop on a GPU allocates little on the
        host).

    Examples
    --------
    >>> import torch
    >>> from skssl.device import reuse_freed_memory
    >>> with reuse_freed_memory():
    ...     x = torch.zeros(1000, 1000) + 1
    >>> float(x.sum())
    1000000.0
    """
    global _depth
    if not enabled or _LIBC is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            _LIBC.mallopt(_M_TRIM_THRESHOLD, _TRIM_DURING)
            _LIBC.mallopt(_M_MMAP_MAX, 0)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _LIBC.mallopt(_M_MMAP_MAX, _MMAP_MAX_DEFAULT)
                _LIBC.mallopt(_M_TRIM_THRESHOLD, _TRIM_AFTER)


class FaultWatch:
    """Turn :func:`reuse_freed_memory` on for the rest of a loop once its steps fault.

    Where glibc already recycles a step's blocks (all under its adaptive threshold,
    such as SimCLR's default 20x20 views in bfloat16), a step faults in few pages and
    malloc is left as it is: keeping blocks in the heap gave no gain there (1,218-1,359
    against 1,267-1,439 images/s, 3 alternating runs). Once ``n_steps`` steps in a row,
    after the first, have each faulted in more than ``pages`` pages (32 MiB by default,
    the largest block glibc recycles), the rest of the loop runs inside
    :func:`reuse_freed_memory`.

    Parameters
    ----------
    enabled : bool, default=True
        ``False`` never turns it on (a loop on a GPU).
    pages : int, default=8192
        Page faults per step (4-KiB pages) above which a step counts as faulting.
    n_steps : int, default=3
        Faulting steps in a row that turn the reuse on.

    Attributes
    ----------
    reusing : bool
        Whether the reuse is on.

    Examples
    --------
    >>> import torch
    >>> from skssl.device import FaultWatch
    >>> with FaultWatch() as watch:
    ...     for _ in range(8):
    ...         x = torch.ones(2**24)  # 64 MB, allocated afresh at every step
    ...         watch.step_done()
    >>> isinstance(watch.reusing, bool)
    True
    """

    def __init__(self, enabled=True, pages=8192, n_steps=3):
        self.enabled = enabled and _LIBC is not None
        self.pages = pages
        self.n_steps = n_steps

    def __enter__(self):
        self._stack = contextlib.ExitStack()
        self._last = None
        self._faulting = 0
        self.reusing = False
        return self

    def step_done(self):
        """Call after every step: counts its page faults and turns the reuse on."""
        if not self.enabled or self.reusing:
            return
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        if self._last is not None:  # not the first step: its blocks are all new
            self._faulting = self._faulting + 1 if faults - self._last > self.pages else 0
            if self._faulting >= self.n_steps:
                self._stack.enter_context(reuse_freed_memory())
                self.reusing = True
        self._last = faults

    def __exit__(self, *exc):
        self._stack.close()
