"""Writes tiny pickles in the format of NVIDIA's official StyleGAN / StyleGAN2 files (a test helper, not a test).

NVIDIA's files are ``pickle.dump((G, D, Gs), f)`` of ``dnnlib.tflib.network.Network`` objects. A Network
pickles as the dict its ``__getstate__`` returns: version, name, static_kwargs, components (sub-networks,
themselves Networks), build_module_src, build_func_name and variables, a list of (name, numpy value) in
the order TensorFlow created them. The names and shapes below are enumerated from the graph definitions
in NVlabs/stylegan training/networks_stylegan.py (G_style, G_mapping, G_synthesis, as built for the
template graph, i.e. the 'linear' structure that creates a ToRGB layer for every level of detail) and
NVlabs/stylegan2 training/networks_stylegan2.py (G_main, G_mapping, G_synthesis_stylegan2). They are
deliberately NOT taken from ganedit's loader, so that the tests check the loader against NVIDIA's naming.

While pickling, a throw-away module ``dnnlib.tflib.network`` holding a ``Network`` class is put in
``sys.modules`` (pickle stores classes by module and name); it is removed again afterwards, so the
loader under test cannot import it. By default the numpy globals are written under the names numpy 1.x
used (``numpy.core.multiarray._reconstruct`` / ``scalar``), as in the published files.
"""

import contextlib
import pickle
import sys
import types

import numpy as np

NETWORK_MODULE = "dnnlib.tflib.network"

# Small widths, stored in static_kwargs the way NVIDIA stores a network's keyword arguments.
STYLEGAN_KWARGS = dict(
    num_channels=3, label_size=0, latent_size=16, dlatent_size=16, mapping_fmaps=16, fmap_base=256, fmap_max=32,
)
STYLEGAN2_KWARGS = dict(
    num_channels=3, label_size=0, latent_size=16, dlatent_size=16, mapping_fmaps=16, fmap_base=256, fmap_max=32,
    architecture="skip",
)

# Signature defaults of NVIDIA's build functions, for keywords a file may leave out.
_MAPPING_DEFAULTS = dict(latent_size=512, label_size=0, dlatent_size=512, mapping_layers=8, mapping_fmaps=512,
                         mapping_lrmul=0.01)
_STYLEGAN_DEFAULTS = dict(num_channels=3, fmap_base=8192, fmap_decay=1.0, fmap_max=512)
_STYLEGAN2_DEFAULTS = dict(num_channels=3, fmap_base=16 << 10, fmap_decay=1.0, fmap_min=1, fmap_max=512,
                           architecture="skip")


# ---------------------------------------------------------------------------------------------------------
# The fake dnnlib module, alive only while pickling.

@contextlib.contextmanager
def _dnnlib_network_class():
    names = ["dnnlib", "dnnlib.tflib", NETWORK_MODULE]
    present = [name for name in names if name in sys.modules]
    if present:
        raise RuntimeError(f"a real module {present[0]} is loaded; these test files must be written without it")
    modules = {name: types.ModuleType(name) for name in names}
    modules["dnnlib"].tflib = modules["dnnlib.tflib"]
    modules["dnnlib.tflib"].network = modules[NETWORK_MODULE]

    class Network:
        """Pickles exactly like NVIDIA's Network: to the dict of its __getstate__."""

        def __init__(self, name, build_func_name, static_kwargs, variables, components=None, build_module_src=""):
            self.name = name
            self.static_kwargs = dict(static_kwargs)
            self.components = dict(components or {})
            self.build_module_src = build_module_src
            self.build_func_name = build_func_name
            self.variables = list(variables)

        def __getstate__(self):
            return {
                "version": 3,
                "name": self.name,
                "static_kwargs": dict(self.static_kwargs),
                "components": dict(self.components),
                "build_module_src": self.build_module_src,
                "build_func_name": self.build_func_name,
                "variables": list(self.variables),
            }

    Network.__module__ = NETWORK_MODULE
    Network.__qualname__ = "Network"
    modules[NETWORK_MODULE].Network = Network
    sys.modules.update(modules)
    try:
        yield Network
    finally:
        for name in names:
            sys.modules.pop(name, None)


# numpy 2 pickles its arrays and scalars through numpy._core.multiarray; NVIDIA's files name numpy.core.multiarray.
_LEGACY_NUMPY_GLOBALS = {
    id(np.zeros(1).__reduce__()[0]): ("numpy.core.multiarray", "_reconstruct"),
    id(np.float32(0).__reduce__()[0]): ("numpy.core.multiarray", "scalar"),
}


class _LegacyNumpyPickler(pickle._Pickler):
    """The pure-Python pickler, writing numpy's reconstruction functions under their numpy 1.x module name."""

    def save_global(self, obj, name=None):
        target = _LEGACY_NUMPY_GLOBALS.get(id(obj))
        if target is None:
            return super().save_global(obj, name)
        module, qualname = target
        if self.proto >= 4:
            self.save(module)
            self.save(qualname)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode("ascii"))
        self.memoize(obj)


def _dump(obj, path, protocol, legacy_numpy):
    with open(path, "wb") as f:
        if legacy_numpy:
            _LegacyNumpyPickler(f, protocol=protocol).dump(obj)
        else:
            pickle.dump(obj, f, protocol=protocol)


# ---------------------------------------------------------------------------------------------------------
# Variables, in TensorFlow's creation order, with random non-zero values.

class _Variables:
    def __init__(self, rng):
        self.rng = rng
        self.items = []  # (name, value)

    def normal(self, name, shape, std=1.0, mean=0.0):
        value = (mean + std * self.rng.standard_normal(shape)).astype(np.float32)
        if value.ndim == 0:
            value = np.float32(value)  # TensorFlow returns a numpy scalar for a 0-d variable
        self.items.append((name, value))

    def scalar(self, name, value):
        self.items.append((name, np.float32(value)))


def _nf_stylegan(kw, stage):
    return min(int(kw["fmap_base"] / (2.0 ** (stage * kw["fmap_decay"]))), kw["fmap_max"])


def _nf_stylegan2(kw, stage):
    return int(np.clip(int(kw["fmap_base"] / (2.0 ** (stage * kw["fmap_decay"]))), kw["fmap_min"], kw["fmap_max"]))


def _mapping_variables(rng, kw):
    """G_mapping (the same variables in both papers). Weights are drawn as NVIDIA initialises them,
    N(0, 1/lrmul), so that the runtime multiplier lrmul/sqrt(fan_in) brings activations back to ~1."""
    v = _Variables(rng)
    lrmul = kw["mapping_lrmul"]
    fan_in = kw["latent_size"]
    if kw["label_size"]:
        v.normal("LabelConcat/weight", [kw["label_size"], kw["latent_size"]])
        fan_in += kw["latent_size"]
    for i in range(kw["mapping_layers"]):
        fmaps = kw["dlatent_size"] if i == kw["mapping_layers"] - 1 else kw["mapping_fmaps"]
        v.normal(f"Dense{i}/weight", [fan_in, fmaps], std=1.0 / lrmul)
        v.normal(f"Dense{i}/bias", [fmaps], std=0.1 / lrmul)
        fan_in = fmaps
    return v.items


def _stylegan_synthesis_variables(rng, kw):
    """G_synthesis of StyleGAN: noise inputs, 4x4 const + conv, then Conv0_up/Conv1 per resolution, each
    followed by the layer epilogue (Noise/weight, bias, StyleMod), and ToRGB_lod* for every level of detail."""
    v = _Variables(rng)
    log2 = int(np.log2(kw["resolution"]))
    num_layers = log2 * 2 - 2
    dlatent = kw["dlatent_size"]
    v.scalar("lod", 0.0)
    for i in range(num_layers):
        res = 2 ** (i // 2 + 2)
        v.normal(f"noise{i}", [1, 1, res, res])

    def epilogue(scope, channels):
        v.normal(f"{scope}/Noise/weight", [channels], std=0.5)
        v.normal(f"{scope}/bias", [channels], std=0.2)
        v.normal(f"{scope}/StyleMod/weight", [dlatent, 2 * channels])
        v.normal(f"{scope}/StyleMod/bias", [2 * channels], std=0.2)

    def to_rgb(res_log2, channels):
        scope = f"ToRGB_lod{log2 - res_log2}"
        v.normal(f"{scope}/weight", [1, 1, channels, kw["num_channels"]])
        v.normal(f"{scope}/bias", [kw["num_channels"]], std=0.2)

    nf1 = _nf_stylegan(kw, 1)
    v.normal("4x4/Const/const", [1, nf1, 4, 4], mean=1.0, std=0.5)
    epilogue("4x4/Const", nf1)
    v.normal("4x4/Conv/weight", [3, 3, nf1, nf1])
    epilogue("4x4/Conv", nf1)
    to_rgb(2, nf1)
    for res_log2 in range(3, log2 + 1):
        res = 2**res_log2
        fin, fout = _nf_stylegan(kw, res_log2 - 2), _nf_stylegan(kw, res_log2 - 1)
        v.normal(f"{res}x{res}/Conv0_up/weight", [3, 3, fin, fout])
        epilogue(f"{res}x{res}/Conv0_up", fout)
        v.normal(f"{res}x{res}/Conv1/weight", [3, 3, fout, fout])
        epilogue(f"{res}x{res}/Conv1", fout)
        to_rgb(res_log2, fout)
    return v.items, num_layers


def _stylegan2_synthesis_variables(rng, kw):
    """G_synthesis_stylegan2: num_layers - 1 noise inputs, 4x4 const, then modulated convolutions
    (weight, mod_weight, mod_bias, noise_strength, bias) and ToRGB layers (no noise) per the architecture."""
    v = _Variables(rng)
    log2 = int(np.log2(kw["resolution"]))
    num_layers = log2 * 2 - 2
    dlatent = kw["dlatent_size"]
    arch = kw["architecture"]
    for i in range(num_layers - 1):
        res = 2 ** ((i + 5) // 2)
        v.normal(f"noise{i}", [1, 1, res, res])

    def modconv(scope, fin, fout, kernel, noise=True):
        v.normal(f"{scope}/weight", [kernel, kernel, fin, fout])
        v.normal(f"{scope}/mod_weight", [dlatent, fin])
        v.normal(f"{scope}/mod_bias", [fin], std=0.2)
        if noise:
            v.normal(f"{scope}/noise_strength", [], std=0.3)
        v.normal(f"{scope}/bias", [fout], std=0.2)

    nf1 = _nf_stylegan2(kw, 1)
    v.normal("4x4/Const/const", [1, nf1, 4, 4])
    modconv("4x4/Conv", nf1, nf1, 3)
    if arch == "skip":
        modconv("4x4/ToRGB", nf1, kw["num_channels"], 1, noise=False)
    fin = nf1
    for res_log2 in range(3, log2 + 1):
        res = 2**res_log2
        fout = _nf_stylegan2(kw, res_log2 - 1)
        modconv(f"{res}x{res}/Conv0_up", fin, fout, 3)
        modconv(f"{res}x{res}/Conv1", fout, fout, 3)
        if arch == "resnet":
            v.normal(f"{res}x{res}/Skip/weight", [1, 1, fin, fout])
        if arch == "skip" or res_log2 == log2:
            modconv(f"{res}x{res}/ToRGB", fout, kw["num_channels"], 1, noise=False)
        fin = fout
    return v.items, num_layers


def _discriminator_variables(rng, kw, nf):
    """A few variables of a discriminator: present in the files, never read by ganedit."""
    v = _Variables(rng)
    log2 = int(np.log2(kw["resolution"]))
    v.normal("FromRGB_lod0/weight", [1, 1, kw["num_channels"], nf(log2 - 1)])
    v.normal("FromRGB_lod0/bias", [nf(log2 - 1)])
    v.normal("4x4/Dense1/weight", [nf(1), max(kw["label_size"], 1)])
    v.normal("4x4/Dense1/bias", [max(kw["label_size"], 1)])
    return v.items


# ---------------------------------------------------------------------------------------------------------
# Whole files.

_FAMILIES = {
    "stylegan": dict(
        defaults=STYLEGAN_KWARGS, arch_defaults=_STYLEGAN_DEFAULTS, synthesis=_stylegan_synthesis_variables,
        nf=_nf_stylegan, top="G_style", mapping="G_mapping", synthesis_func="G_synthesis", discriminator="D_basic",
        module_src="# training/networks_stylegan.py (its source is stored in the file; ganedit never runs it)\n",
    ),
    "stylegan2": dict(
        defaults=STYLEGAN2_KWARGS, arch_defaults=_STYLEGAN2_DEFAULTS, synthesis=_stylegan2_synthesis_variables,
        nf=_nf_stylegan2, top="G_main", mapping="G_mapping", synthesis_func="G_synthesis_stylegan2",
        discriminator="D_stylegan2",
        module_src="# training/networks_stylegan2.py (its source is stored in the file; ganedit never runs it)\n",
    ),
}


def _split(flat_name):
    """'mapping/Dense0/weight' -> ('mapping', 'Dense0/weight'); 'dlatent_avg' -> ('', 'dlatent_avg')."""
    head, _, tail = flat_name.partition("/")
    return (head, tail) if head in ("mapping", "synthesis") and tail else ("", flat_name)


def _generator_variables(family, kw, seed):
    """{'': top-level, 'mapping': ..., 'synthesis': ...}, each a list of (name, value)."""
    spec = _FAMILIES[family]
    rng = np.random.RandomState(seed)
    synthesis, num_layers = spec["synthesis"](rng, kw)
    mapping = _mapping_variables(rng, kw)
    top = _Variables(rng)
    top.scalar("lod", 0.0)
    top.normal("dlatent_avg", [kw["dlatent_size"]], std=0.5)
    return {"": top.items, "mapping": mapping, "synthesis": synthesis}, num_layers


def write_official_pickle(path, family, resolution, seed=0, protocol=4, legacy_numpy=True, drop=(), extra=None,
                          replace=None, **kwargs):
    """Write a (G, D, Gs) pickle of ``family`` ('stylegan' | 'stylegan2') to ``path``.

    ``kwargs`` override the static kwargs stored in the file (e.g. label_size=1, architecture='resnet').
    ``drop`` (names), ``extra`` and ``replace`` ({name: value}) edit the variables of Gs, named as
    'dlatent_avg', 'mapping/Dense0/weight', 'synthesis/4x4/Conv/weight'; a value in ``extra`` may be any
    picklable object. G and D hold other random values than Gs.

    Returns {name: value} of everything written into Gs (scalars as 0-d arrays).
    """
    spec = _FAMILIES[family]
    static_kwargs = {"resolution": resolution, **spec["defaults"], **kwargs}
    kw = {**_MAPPING_DEFAULTS, **spec["arch_defaults"], **static_kwargs}

    gs_vars, num_layers = _generator_variables(family, kw, seed)
    g_vars, _ = _generator_variables(family, kw, seed + 1_000_003)
    d_vars = _discriminator_variables(np.random.RandomState(seed + 2_000_003), kw, lambda s: spec["nf"](kw, s))

    gs_vars = {part: dict(items) for part, items in gs_vars.items()}
    for name in drop:
        part, local = _split(name)
        if local not in gs_vars[part]:
            raise KeyError(f"{name} is not a variable of this file")
        del gs_vars[part][local]
    for name, value in (replace or {}).items():
        part, local = _split(name)
        if local not in gs_vars[part]:
            raise KeyError(f"{name} is not a variable of this file")
        gs_vars[part][local] = value
    for name, value in (extra or {}).items():
        part, local = _split(name)
        gs_vars[part][local] = value

    with _dnnlib_network_class() as Network:
        def generator(name, variables):
            mapping = Network("G_mapping", spec["mapping"], {**static_kwargs, "dlatent_broadcast": num_layers},
                              list(variables["mapping"].items()), build_module_src=spec["module_src"])
            synthesis = Network("G_synthesis", spec["synthesis_func"], static_kwargs,
                                list(variables["synthesis"].items()), build_module_src=spec["module_src"])
            return Network(name, spec["top"], static_kwargs, list(variables[""].items()),
                           components={"synthesis": synthesis, "mapping": mapping}, build_module_src=spec["module_src"])

        G = generator("G", {part: dict(items) for part, items in g_vars.items()})
        D = Network("D", spec["discriminator"], static_kwargs, d_vars, build_module_src=spec["module_src"])
        Gs = generator("Gs", gs_vars)
        _dump((G, D, Gs), path, protocol, legacy_numpy)

    written = {}
    for part, variables in gs_vars.items():
        for local, value in variables.items():
            name = f"{part}/{local}" if part else local
            written[name] = np.asarray(value) if isinstance(value, (np.ndarray, np.generic)) else value
    return written


def write_stylegan_pickle(path, resolution=128, seed=0, **kwargs):
    """A tiny StyleGAN (G_style) file; at 128 px its last Conv0_up uses NVIDIA's fused upscale conv."""
    return write_official_pickle(path, "stylegan", resolution, seed=seed, **kwargs)


def write_stylegan2_pickle(path, resolution=64, seed=0, **kwargs):
    """A tiny StyleGAN2 (G_main, config-f 'skip' architecture) file."""
    return write_official_pickle(path, "stylegan2", resolution, seed=seed, **kwargs)
