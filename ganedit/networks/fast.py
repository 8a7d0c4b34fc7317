"""The fast synthesis behind ``G.optimize()``: the same arithmetic, compiled with torch.compile (inductor).

Why: an edit is one synthesis from cached styles, so synthesis speed is the slider's speed. Eager synthesis
spends 45-65% of its time in convolutions and the rest in element-wise passes over large feature maps (noise,
bias, activation, normalisation, modulation, blur), one full pass each. Inductor fuses those passes, and with
``freezing`` it treats the weights as constants: gains folded in, convolution weights prepacked for oneDNN in
channels-last layout on a CPU, cuDNN's choice on a GPU. ``_synthesize(fast=True)`` adds exact rewrites with fewer
multiply-adds: StyleGAN's upscaling convolutions as one transposed convolution, and on a CPU the large 3x3 and
upscaling convolutions as Winograd F(4x4, 3x3) or F(6x6, 3x3) (ganedit.networks.winograd). Pictures stay within
2e-5 relative L2 of eager.

Compiling costs tens of seconds per graph, and a graph (``dynamic=False``) serves one key: batch size, noise
mode and whether activations are returned. So a graph is used only once it is warm: ``get`` returns None for a
call whose key is not, and the caller runs eager synthesis. In background mode one worker thread compiles and
warms keys (those named at optimize time first, then any that calls bring) while callers are served eagerly; a
key is published, by adding it to a set, only after its graph has run once, so a caller never meets a graph
that is still compiling. Compiling traces the module without running it: eager calls on it go on meanwhile.

Random noise stays eager (its stream is torch's), and so do calls that need gradients.
"""

import logging
import os
import threading
from functools import partial

import torch

from . import memory, winograd

ENV_VAR = "GANEDIT_OPTIMIZE"
OPTIMIZE_FROM_RESOLUTION = 256  # NVIDIA's models are worth compiling; the bundled 64 px one is quick already
MAX_GRAPHS = 8  # compiled keys per generator; calls with further keys stay eager
log = logging.getLogger("ganedit")
_COMPILING = threading.Lock()  # one compilation at a time: the compiler's settings are global, the CPUs few
# Set when the interpreter starts to shut down: workers then finish the graph in hand and take no other. They are
# not daemon threads, so shutdown waits for that graph: a compile killed by interpreter teardown aborts the process
# ("terminate called without an active exception"), which would skip every clean-up.
_SHUTTING_DOWN = threading.Event()
threading._register_atexit(_SHUTTING_DOWN.set)  # runs before non-daemon threads are joined (as concurrent.futures)


def optimization_enabled():
    """False when the environment variable GANEDIT_OPTIMIZE is 0 / false / no / off."""
    return os.environ.get(ENV_VAR, "1").strip().lower() not in ("0", "false", "no", "off")


class FastSynthesis:
    """G's compiled synthesis graphs, one per key, and the worker that warms them (see the module's docstring)."""

    def __init__(self, G, background, batch_sizes, return_activations=(False, True)):
        self.G, self.device, self.background = G, G.device, background
        if self.device.type == "cpu":
            memory.keep_freed_memory()  # eager calls meanwhile gain from it too
        self.compiled = None  # made on the first warm-up: importing the compiler alone takes seconds
        self.warm = set()  # keys whose graph has run once
        self.failed = set()
        self.pending = {}  # key -> example arguments, in arrival order
        self.lock = threading.Lock()  # guards pending and worker
        self.worker = None
        with torch.no_grad():
            for batch in batch_sizes:
                styles = G.styles(G.w_avg.expand(batch, -1))
                for activations in return_activations:
                    self._ask((styles.scales, G._style_bias(styles), "const", activations))

    def get(self, scales, biases, noise_mode, return_activations):
        """The compiled synthesis for these arguments if its graph is warm, else None; a missing graph is
        compiled now (blocking) or, in background mode, by the worker."""
        args = (scales, biases, noise_mode, return_activations)
        key = self._key(*args)
        if key is None:
            return None
        if key not in self.warm:
            self._ask(args)
        return self._run if key in self.warm else None

    def is_warm(self, batch_size, return_activations=False, noise_mode="const"):
        return (batch_size, noise_mode, return_activations) in self.warm

    def wait(self):
        """Block until the background worker has warmed (or given up on) every key asked for so far."""
        worker = self.worker
        if worker is not None:
            worker.join()

    def _key(self, scales, biases, noise_mode, return_activations):
        """(batch size, noise mode, activations) for calls a graph can serve, None for calls that stay eager."""
        n = scales[0].shape[0]
        shapes = [(n, spec.channels) for spec in self.G.style_layers]
        tensors = list(zip(scales, shapes)) + list(zip(biases or (), shapes))
        if (torch.is_grad_enabled() or torch.is_inference_mode_enabled() or noise_mode not in ("const", "none")
                or self.G.device != self.device
                or any((t.shape, t.dtype, t.device) != (shape, torch.float32, self.device) for t, shape in tensors)):
            return None
        return n, noise_mode, return_activations

    def _run(self, scales, biases, noise_mode, return_activations):
        # Contiguous inputs, whatever views the caller holds: a graph's guards include strides.
        scales = tuple(s.contiguous() for s in scales)
        biases = biases and tuple(b.contiguous() for b in biases)
        return self.compiled(scales, biases, noise_mode, return_activations)

    def _ask(self, args):
        key = self._key(*args)
        with self.lock:
            if (key in self.warm or key in self.failed or key in self.pending
                    or len(self.warm) + len(self.failed) + len(self.pending) >= MAX_GRAPHS):
                return
            if self.background:
                self.pending[key] = tuple(_detached_copy(a) for a in args)  # the caller's tensors may change
                if self.worker is None:
                    self.worker = threading.Thread(target=self._work, name="ganedit-optimize")
                    self.worker.start()
                return
            self.pending[key] = args
        try:
            self._warm_up(key, args)
        finally:
            with self.lock:
                del self.pending[key]

    def _work(self):
        while True:
            with self.lock:
                if not self.pending or _SHUTTING_DOWN.is_set():
                    self.worker = None
                    return
                key, args = next(iter(self.pending.items()))
            try:
                self._warm_up(key, args)
            except Exception as err:  # noqa: BLE001 - a model that can't be compiled is served eagerly
                # (once shutdown began, the compiler's own thread pools refuse work: that is no failure to report)
                if not _SHUTTING_DOWN.is_set():
                    log.warning("ganedit: no fast synthesis of %s for %s (eager instead): %s: %s",
                                self.G.name, key, type(err).__name__, err)
                    self.failed.add(key)
            with self.lock:
                del self.pending[key]

    def _warm_up(self, key, args):
        from ..files import cache_dir

        # Inductor's on-disk cache (compiled kernels, found again after a restart) lives with ganedit's.
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir() / "torchinductor"))
        from torch._inductor import config as inductor_config  # seconds to import: not before it is needed

        with _COMPILING, inductor_config.patch(freezing=True), torch.no_grad():
            if self.compiled is None:
                if self.device.type == "cpu":
                    winograd.prepare()
                self.compiled = _compile(self.G)
            self._run(*args)  # the first call compiles
        self.warm.add(key)


def _detached_copy(value):
    if isinstance(value, tuple):
        return tuple(_detached_copy(v) for v in value)
    return value.detach().clone() if isinstance(value, torch.Tensor) else value


def _compile(G):
    """G's fast synthesis, to be compiled on its first call (under _warm_up's settings)."""
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 4 * MAX_GRAPHS)
    # Freezing makes the weights constants (folded gains, prepacked convolutions). On CUDA no CUDA graphs
    # ("reduce-overhead"): a recorded graph belongs to the thread that recorded it, here the worker.
    return torch.compile(partial(G._synthesize, fast=True), dynamic=False)
