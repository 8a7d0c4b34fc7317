"""The fast synthesis behind ``G.optimize()``: the same arithmetic, compiled with torch.compile (inductor).

Why: an edit is one synthesis from cached styles, so synthesis speed is the slider's speed. Eager synthesis
spends 45-65% of its time in convolutions and the rest in element-wise passes over large feature maps (noise,
bias, activation, normalisation, modulation, blur), one full pass each. Inductor fuses those passes, and with
``freezing`` it treats the weights as constants: gains folded in, convolution weights prepacked for oneDNN in
channels-last layout on a CPU, cuDNN's choice on a GPU. ``_synthesize(fast=True)`` adds exact rewrites that cost
fewer multiply-adds (see the families). Pictures stay within 1e-5 relative L2 of eager float32.

Compiling costs tens of seconds per graph, and a graph (compiled with ``dynamic=False``) serves one key: batch
size, noise mode and whether activations are returned. So a graph is used only once it is warm: ``get`` returns
None for a call whose key is not, and the caller runs eager synthesis. In background mode one worker thread
compiles and warms keys (those named at optimize time first, then any that calls bring) while callers are
served eagerly; a warm key is published by adding it to a set, so a caller sees a graph only once it is whole.
Compiling traces the module without running it, so eager calls on the same module go on meanwhile.

Random noise stays eager (its stream is torch's), and so do calls that need gradients.
"""

import logging
import os
import threading
from functools import partial

import torch

ENV_VAR = "GANEDIT_OPTIMIZE"
MAX_GRAPHS = 8  # compiled keys per generator; calls with further keys stay eager
log = logging.getLogger("ganedit")


def optimization_enabled():
    """False when the environment variable GANEDIT_OPTIMIZE is 0 / false / no / off."""
    return os.environ.get(ENV_VAR, "1").strip().lower() not in ("0", "false", "no", "off")


def _keep_compiler_cache_with_ours():
    """Inductor's on-disk cache (compiled kernels, reused after a restart) goes under ganedit's cache folder."""
    from ..loading.registry import cache_dir

    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir() / "torchinductor"))


class FastSynthesis:
    def __init__(self, G, background, batch_sizes):
        self.G, self.device, self.background = G, G.device, background
        self.compiled = None  # made on first warm-up: importing the compiler takes seconds
        self.warm = set()  # keys whose graph is compiled and has run once
        self.failed = set()
        self.pending = {}  # key -> example arguments, in arrival order
        self.lock = threading.Lock()  # guards pending, worker and compiled
        self.compile_lock = threading.Lock()  # one compilation at a time
        self.worker = None
        with torch.no_grad():
            for batch in batch_sizes:
                styles = G.styles(G.w_avg.expand(batch, -1))
                for activations in (False, True):
                    self._ask((tuple(styles), G._style_bias(styles), "const", activations))

    def get(self, scales, biases, noise_mode, return_activations):
        """The compiled synthesis for this call if its key is warm, else None (and the key is compiled: now, or
        in the background)."""
        args = (scales, biases, noise_mode, return_activations)
        key = self._key(*args)
        if key is None or key in self.warm:
            return key and self._run
        self._ask(args)
        return self._run if key in self.warm else None

    def _key(self, scales, biases, noise_mode, return_activations):
        """What selects a graph; None for calls that stay eager."""
        tensors = scales + (biases or ())
        if (torch.is_grad_enabled() or torch.is_inference_mode_enabled() or noise_mode not in ("const", "none")
                or self.G.device != self.device
                or any(t.dtype != torch.float32 or t.device != self.device for t in tensors)):
            return None
        return noise_mode, return_activations, tuple(t.shape for t in tensors)

    def _run(self, scales, biases, noise_mode, return_activations):
        # Contiguous inputs, whatever view the caller holds: the graph's guards include strides.
        scales = tuple(s.contiguous() for s in scales)
        biases = biases and tuple(b.contiguous() for b in biases)
        return self.compiled(scales, biases, noise_mode, return_activations)

    def _ask(self, args):
        key = self._key(*args)
        with self.lock:
            if key in self.warm or key in self.failed or key in self.pending:
                return
            if len(self.warm) + len(self.failed) + len(self.pending) >= MAX_GRAPHS:
                return
            if not self.background:
                self.pending[key] = args
            else:
                self.pending[key] = tuple(_copy(a) for a in args)
                if self.worker is None:
                    self.worker = threading.Thread(target=self._work, name="ganedit-optimize", daemon=True)
                    self.worker.start()
                return
        try:
            self._warm_up(key, args)
        finally:
            with self.lock:
                self.pending.pop(key, None)

    def _work(self):
        while True:
            with self.lock:
                if not self.pending:
                    self.worker = None
                    return
                key, args = next(iter(self.pending.items()))
            try:
                self._warm_up(key, args)
            except Exception as err:  # noqa: BLE001 - a model that can't compile is served eagerly
                log.warning("ganedit: no fast synthesis for %s %s (eager instead): %s: %s",
                            getattr(self.G, "name", type(self.G).__name__), key[:2], type(err).__name__, err)
                self.failed.add(key)
            with self.lock:
                del self.pending[key]

    def _warm_up(self, key, args):
        with self.compile_lock:
            if key in self.warm:
                return
            if self.compiled is None:
                self.compiled = _compile(self.G)
            with torch.no_grad():
                self._run(*args)
            self.warm.add(key)


def _copy(value):
    if isinstance(value, tuple):
        return tuple(_copy(v) for v in value)
    return value.detach().clone() if isinstance(value, torch.Tensor) else value


def _compile(G):
    """G's fast synthesis, compiled as measured best on its device (bench/bench_reference.py)."""
    _keep_compiler_cache_with_ours()
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 4 * MAX_GRAPHS)
    # freezing: the weights become constants (folded gains, prepacked convolutions). On CUDA, no CUDA graphs
    # ("reduce-overhead"): their replay is bound to the thread that recorded them, and ours warms in a worker.
    return torch.compile(partial(G._synthesize, fast=True), dynamic=False, options={"freezing": True})
