"""NVIDIA's official StyleGAN / StyleGAN2 pickles, read without TensorFlow, without running pickled code, and
without letting the file decide what we allocate.

The files are pickles of ``dnnlib.tflib.network.Network`` objects (a (G, D, Gs) tuple). Each network
pickles as a plain state dict: its build function's name and keyword arguments, its variables as
(name, numpy array) pairs, and its sub-networks. ``_Unpickler`` is pickle's pure-Python unpickler with
every opcode that builds or calls something checked, so that the file is read as a stream and rebuilds
nothing but that:

- globals: only the network record, its dicts and numpy's array, scalar and dtype constructors, each
  called only with the arguments NVIDIA's files give it: an empty array (filled by its state), a
  scalar of its dtype's size, a dtype named as a plain numeric type whose pickled state is exactly the
  one numpy writes for it (no object, void or structured dtypes: those let file bytes act as pointers);
- sizes: no read may ask for more bytes than are left in the file, an array's data must be exactly its
  shape times its item size, and the number of opcodes is bounded (so is every container);
- structure: dict keys are strings or flat tuples (hashing a deep key overflows the C stack), data nests
  at most MAX_DEPTH deep, nothing is filled once stored in something else (so nothing contains itself).

Then the architecture in the stored keyword arguments is checked against the bounds of limits.py, and
every variable's name, dtype and shape against that architecture, before the generator is built.
"""

import codecs
import math
import os
import pickle

import numpy as np
import torch

from ..networks import build_generator
from .errors import ModelFileError, shown
from .limits import SETTINGS, skeleton

MAX_OPCODES = 1_000_000  # a 1024 px (G, D, Gs) file has ~10 k (~25 per variable)
MAX_DEPTH = 32  # NVIDIA's data nests ~8 deep: (G, D, Gs) > Network > state > components > Network > ...
MAX_LINE = 1 << 16  # text-protocol arguments (numbers, names)

_NUMPY_RECONSTRUCT = np.zeros(1).__reduce__()[0]  # numpy's own array-unpickling function
_NUMPY_SCALAR = np.float32(0).__reduce__()[0]  # and its scalar-unpickling function
# The dtypes of TensorFlow variables, by the names numpy pickles them under, and the state it pickles with each.
_DTYPES = {name: np.dtype(name) for name in ("f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1")}
_DTYPE_STATES = {dtype: dtype.__reduce__()[2] for dtype in _DTYPES.values()}  # f4: (3, '<', None, None, None, -1, -1, 0)


class NetworkRecord:
    """What a pickled ``dnnlib.tflib.network.Network`` holds, as inert data of checked types."""

    def __init__(self):
        self.variables = None  # until the file's state arrives

    def __setstate__(self, state):
        if not (isinstance(state, dict) and isinstance(state.get("variables"), list)):
            raise ModelFileError("a Network record without a list of variables")
        fields = {"build_func_name": str, "static_kwargs": dict, "components": dict}
        for key, kind in fields.items():
            if state.get(key) is not None and not isinstance(state[key], kind):
                found = type(state[key]).__name__
                raise ModelFileError(f"a Network record whose {key} is a {found}, not a {kind.__name__}")
        for pair in state["variables"]:
            if not (type(pair) is tuple and len(pair) == 2 and isinstance(pair[0], str)
                    and isinstance(pair[1], (np.ndarray, np.generic))):
                raise ModelFileError(f"a Network variable that is not a (name, numpy value) pair: {shown(pair)}")
        for name, component in (state.get("components") or {}).items():
            if not (isinstance(name, str) and isinstance(component, NetworkRecord) and component.variables is not None):
                raise ModelFileError(f"a Network component {shown(name)} that is not a network record")
        self.build_func_name = state.get("build_func_name") or ""
        self.kwargs = state.get("static_kwargs") or {}
        self.components = state.get("components") or {}
        self.variables = state["variables"]

    def flat_variables(self, prefix=""):
        """All variables of this network and its sub-networks, named 'component/.../variable'."""
        out = {f"{prefix}{name}": np.asarray(value) for name, value in self.variables}
        for name, component in self.components.items():
            out.update(component.flat_variables(f"{prefix}{name}/"))
        return out


_ALLOWED_GLOBALS = {
    ("dnnlib.tflib.network", "Network"): NetworkRecord,
    ("dnnlib.util", "EasyDict"): dict,
    ("collections", "OrderedDict"): dict,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _NUMPY_RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _NUMPY_RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _NUMPY_SCALAR,
    ("numpy._core.multiarray", "scalar"): _NUMPY_SCALAR,
    ("_codecs", "encode"): codecs.encode,  # how protocol-2 pickles store bytes
}
_CONTAINERS = (tuple, list, dict, NetworkRecord)


def _same(value, expected):
    """``value == expected`` for plain constants (and tuples of them), types first: no object from the file decides."""
    if type(value) is not type(expected):
        return False
    if type(expected) is tuple:
        return len(value) == len(expected) and all(map(_same, value, expected))
    return value == expected


def _plain_key(key):
    """A dict key whose hash can't recurse: a string, or a short flat tuple of strings and integers."""
    return type(key) is str or (type(key) is tuple and len(key) <= 8 and all(type(k) in (str, int) for k in key))


class _Stream:
    """The file as the unpickler reads it: a read longer than what is left is refused before it is attempted (so a
    forged length can't make us allocate more than the file holds), and text lines stay short."""

    def __init__(self, f):
        self._file = f
        self.size = self.left = os.fstat(f.fileno()).st_size

    def read(self, n):
        if not 0 <= n <= self.left:
            raise ModelFileError(f"{n} bytes asked for where the file has {self.left} left (truncated, or forged)")
        data = self._file.read(n)
        self.left -= len(data)
        return data

    def readline(self):
        line = self._file.readline(MAX_LINE)
        self.left -= len(line)
        if len(line) == MAX_LINE and not line.endswith(b"\n"):
            raise ModelFileError(f"a text line longer than {MAX_LINE} bytes")
        return line


def _counted(load):
    def step(self):
        self.opcodes += 1
        if self.opcodes > MAX_OPCODES:
            raise ModelFileError(f"more than {MAX_OPCODES} pickle opcodes (NVIDIA's files have about ten thousand)")
        load(self)
    return step


def _refused(what):
    def load(self):
        raise ModelFileError(f"the file uses {what}, which network records never do")
    return load


def _nested(load):
    """An opcode that builds a tuple or list from stack items (the new container holds them)."""
    def step(self):
        load(self)
        self._nest(self.stack[-1], self.stack[-1])
    return step


class _Unpickler(pickle._Unpickler):
    """pickle's pure-Python unpickler, with every opcode that builds or calls something checked (see the module
    docstring). Every opcode runs the method of its name: pickle's own, or the checked one defined here."""

    def __init__(self, f):
        self._stream = _Stream(f)
        super().__init__(self._stream)
        self.opcodes = 0
        self.encoded = 0  # characters turned into bytes by _codecs.encode, at most the file's size
        self.nodes = {}  # id -> [container, depth, stored] for each container that holds or is held (kept alive)

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise ModelFileError(
                f"the file asks for the Python object {module}.{name}, which is not part of a StyleGAN network "
                f"record (allowed: {', '.join(f'{m}.{n}' for m, n in _ALLOWED_GLOBALS)})"
            ) from None

    def persistent_load(self, pid):
        raise ModelFileError("the file uses persistent references, which network records never do")

    load_empty_set = load_additems = load_frozenset = _refused("sets")
    load_bytearray8 = load_next_buffer = load_readonly_buffer = _refused("protocol-5 buffers")
    load_tuple = _nested(pickle._Unpickler.load_tuple)
    load_tuple1 = _nested(pickle._Unpickler.load_tuple1)
    load_tuple2 = _nested(pickle._Unpickler.load_tuple2)
    load_tuple3 = _nested(pickle._Unpickler.load_tuple3)
    load_list = _nested(pickle._Unpickler.load_list)

    def _nest(self, container, items):
        """Record that ``items`` go into ``container``, refusing deep or self-containing data."""
        if not items:
            return
        node = self.nodes.setdefault(id(container), [container, 1, False])
        if node[2]:
            raise ModelFileError("an object filled after it was stored in another (recursive data)")
        for item in items:
            if item is container:
                raise ModelFileError("an object that contains itself")
            if isinstance(item, _CONTAINERS):
                inner = self.nodes.setdefault(id(item), [item, 1, True])
                inner[2] = True
                node[1] = max(node[1], inner[1] + 1)
        if node[1] > MAX_DEPTH:
            raise ModelFileError(f"data nested more than {MAX_DEPTH} deep (network records nest about 8 deep)")

    def _fill_dict(self, target, items):
        if type(target) is not dict or len(items) % 2:
            raise ModelFileError(f"dict items (an odd number, or for a {type(target).__name__})")
        keys = items[::2]
        if not all(map(_plain_key, keys)):
            bad = next(k for k in keys if not _plain_key(k))
            raise ModelFileError(f"a dict key {shown(bad)}; allowed: strings and short flat tuples")
        self._nest(target, items)
        target.update(zip(keys, items[1::2]))

    def _fill_list(self, target, items):
        if type(target) is not list:
            raise ModelFileError(f"list items for a {type(target).__name__}")
        self._nest(target, items)
        target.extend(items)

    def load_dict(self):
        items = self.pop_mark()
        self.append({})
        self._fill_dict(self.stack[-1], items)

    def load_setitem(self):
        value = self.stack.pop()
        key = self.stack.pop()
        self._fill_dict(self.stack[-1], [key, value])

    def load_setitems(self):
        items = self.pop_mark()
        self._fill_dict(self.stack[-1], items)

    def load_append(self):
        item = self.stack.pop()
        self._fill_list(self.stack[-1], [item])

    def load_appends(self):
        items = self.pop_mark()
        self._fill_list(self.stack[-1], items)

    def _call(self, func, args):
        """The one place where the file makes us call something: an allowed global, with only the arguments
        NVIDIA's files give it, checked before the call can allocate anything."""
        if type(args) is not tuple:
            raise ModelFileError(f"call arguments that are a {type(args).__name__}, not a tuple")
        if func is NetworkRecord or func is dict:
            if args:
                raise ModelFileError(f"a {func.__name__} made from arguments; network records and dicts are made empty")
            return func()
        if func is np.dtype:
            if (len(args) == 3 and type(args[0]) is str and args[0] in _DTYPES
                    and all(type(flag) in (bool, int) and flag in (0, 1) for flag in args[1:])):
                return _DTYPES[args[0]]
            raise ModelFileError(
                f"numpy.dtype{shown(args)}; allowed: plain numeric types ({', '.join(_DTYPES)}), no object, "
                "void or structured dtypes"
            )
        if func is _NUMPY_RECONSTRUCT:
            if _same(args, (np.ndarray, (0,), b"b")):
                return func(*args)
            raise ModelFileError(f"numpy's _reconstruct{shown(args)}; allowed: (ndarray, (0,), b'b'), an empty array")
        if func is _NUMPY_SCALAR:
            if (len(args) == 2 and isinstance(args[0], np.dtype) and args[0] in _DTYPE_STATES
                    and type(args[1]) is bytes and len(args[1]) == args[0].itemsize):
                return func(*args)
            raise ModelFileError(f"numpy's scalar{shown(args)}; allowed: a plain numeric dtype and its bytes")
        if func is codecs.encode:
            if not (len(args) == 2 and type(args[0]) is str and _same(args[1], "latin1")):
                raise ModelFileError(f"_codecs.encode{shown(args)}; allowed: (text, 'latin1')")
            self.encoded += len(args[0])
            if self.encoded > self._stream.size:
                raise ModelFileError("more bytes from _codecs.encode than the file holds (the same text, reused)")
            return func(*args)
        raise ModelFileError(f"a call of {shown(func)}, which network records never make")

    def load_reduce(self):
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args)

    load_newobj = load_reduce  # cls.__new__(cls, *args): for the allowed classes, the same as calling them

    def load_newobj_ex(self):
        if not _same(self.stack.pop(), {}):
            raise ModelFileError("keyword arguments to a constructor, which network records never use")
        self.load_reduce()

    def _instantiate(self, klass, args):  # INST and OBJ
        self.append(self._call(klass, tuple(args)))

    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if type(inst) is NetworkRecord:
            self._nest(inst, [state])
            inst.__setstate__(state)
        elif type(inst) is np.ndarray:
            self._fill_array(inst, state)
        elif isinstance(inst, np.dtype):
            if not _same(state, _DTYPE_STATES[inst]):
                raise ModelFileError(
                    f"dtype {inst} with the state {shown(state)}; allowed: numpy's own, {_DTYPE_STATES[inst]}"
                )
        elif not (type(inst) is dict and (state is None or _same(state, {}))):  # an EasyDict's empty __dict__
            raise ModelFileError(f"a state for a {type(inst).__name__}; only network records and numpy arrays have one")

    def _fill_array(self, array, state):
        """numpy's array state (1, shape, dtype, fortran_order, data), with exactly the data the shape needs."""
        if not (type(state) is tuple and len(state) == 5 and _same(state[0], 1)):
            raise ModelFileError(f"an array state {shown(state)}; allowed: (1, shape, dtype, fortran_order, bytes)")
        _, shape, dtype, fortran, data = state
        size = self._stream.size  # no dimension can be longer than the file
        if not (type(shape) is tuple and len(shape) <= 32 and all(type(n) is int and 0 <= n <= size for n in shape)
                and isinstance(dtype, np.dtype) and dtype in _DTYPE_STATES and type(fortran) is bool
                and type(data) is bytes):
            raise ModelFileError(f"an array state {shown(state)}; allowed: (1, shape, plain dtype, bool, bytes)")
        if math.prod(shape) * dtype.itemsize != len(data):
            raise ModelFileError(f"an array of shape {shape} {dtype} with {len(data)} bytes of data")
        array.__setstate__(state)


class _Opcodes(dict):
    def __missing__(self, code):
        raise pickle.UnpicklingError(f"invalid load key {code:#04x}")


_Unpickler.dispatch = _Opcodes(
    {code: _counted(getattr(_Unpickler, load.__name__)) for code, load in pickle._Unpickler.dispatch.items()}
)


def read_official_pickle(path):
    """The generator record (Gs) of an official pickle, read as a stream and refusing anything but network records."""
    try:
        with open(path, "rb") as f:
            obj = _Unpickler(f).load()
    except ModelFileError as err:
        raise ModelFileError(f"{path}: refused to load: {err}") from None
    except Exception as err:  # noqa: BLE001 - garbage can fail in many ways (truncated data, unknown opcodes, ...)
        why = f"{type(err).__name__}: {str(err)[:300]}"
        raise ModelFileError(f"{path}: not a readable NVIDIA network pickle (truncated or corrupt?): {why}") from None
    if isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(o, NetworkRecord) for o in obj):
        obj = obj[2]  # (G, D, Gs): Gs is the moving-average generator NVIDIA uses for pictures
    if not (isinstance(obj, NetworkRecord) and obj.variables is not None):
        raise ModelFileError(f"{path}: expected a (G, D, Gs) tuple of networks, found {type(obj).__name__}")
    return obj


# The keyword arguments each official build function reads, with the defaults of its signature;
# a keyword that changes the graph in a way we don't implement is refused (REQUIRED).
_CONFIG_KEYS = {
    "latent_size": "z_dim", "dlatent_size": "w_dim", "resolution": "resolution", "mapping_layers": "mapping_layers",
    "mapping_fmaps": "mapping_fmaps", "mapping_lrmul": "mapping_lrmul", "fmap_base": "fmap_base",
    "fmap_decay": "fmap_decay", "fmap_max": "fmap_max", "fmap_min": "fmap_min", "blur_filter": "blur_filter",
    "fused_scale": "fused_scale", "resample_kernel": "resample_kernel",
}
_REQUIRED = {
    "stylegan": {"num_channels": 3, "label_size": 0, "use_styles": True, "const_input_layer": True, "use_noise": True,
                 "nonlinearity": "lrelu", "mapping_nonlinearity": "lrelu", "use_wscale": True, "use_pixel_norm": False,
                 "use_instance_norm": True, "normalize_latents": True},
    "stylegan2": {"num_channels": 3, "label_size": 0, "architecture": "skip", "nonlinearity": "lrelu",
                  "mapping_nonlinearity": "lrelu", "normalize_latents": True},
}
_KINDS = {("G_style", "G_synthesis"): "stylegan", ("G_main", "G_synthesis_stylegan2"): "stylegan2"}


def _matches(value, required):
    """Whether a keyword argument from the file is the value ganedit implements (a string, or a number equal to it)."""
    if isinstance(required, str):
        return type(value) is str and value == required
    return isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)) and bool(value == required)


def _architecture(path, record):
    synthesis = record.components.get("synthesis")
    mapping = record.components.get("mapping")
    if synthesis is None or mapping is None:
        raise ModelFileError(f"{path}: the generator has no mapping/synthesis components")
    kind = _KINDS.get((record.build_func_name, synthesis.build_func_name))
    if kind is None:
        raise ModelFileError(
            f"{path}: unsupported network {shown(record.build_func_name)}/{shown(synthesis.build_func_name)}; "
            "supported: StyleGAN (G_style/G_synthesis) and StyleGAN2 (G_main/G_synthesis_stylegan2)"
        )
    kwargs = {**record.kwargs, **mapping.kwargs, **synthesis.kwargs}
    for key, required in _REQUIRED[kind].items():
        if key in kwargs and not _matches(kwargs[key], required):
            raise ModelFileError(
                f"{path}: {key}={shown(kwargs[key])} is not supported (ganedit implements {key}={required!r})"
            )
    # Like NVIDIA's build functions, ignore keywords the kind does not take (they are checked by limits.skeleton).
    return kind, {ours: kwargs[k] for k, ours in _CONFIG_KEYS.items() if k in kwargs and ours in SETTINGS[kind]}


def official_variable_layout(G):
    """NVIDIA's variable name -> (our state-dict key, layout) for generator G; layout says how to transpose."""
    table = {"dlatent_avg": ("w_avg", "plain")}
    for i in range(len(G.mapping_network.layers)):
        table[f"mapping/Dense{i}/weight"] = (f"mapping_network.layers.{i}.weight", "dense")
        table[f"mapping/Dense{i}/bias"] = (f"mapping_network.layers.{i}.bias", "plain")
    noise_index = 0
    for spec in G.style_layers:
        tf, ours = f"synthesis/{spec.name}/", f"layers.{spec.name.replace('/', '_')}."
        if G.kind == "stylegan":
            if spec.name == "4x4/Const":
                table[tf + "const"] = (ours + "const", "plain")
            else:
                table[tf + "weight"] = (ours + "weight", "conv")
            table[tf + "Noise/weight"] = (ours + "noise_weight", "plain")
            table[tf + "bias"] = (ours + "bias", "plain")
            table[tf + "StyleMod/weight"] = (ours + "style.weight", "dense")
            table[tf + "StyleMod/bias"] = (ours + "style.bias", "plain")
        else:
            table[tf + "weight"] = (ours + "weight", "conv")
            table[tf + "mod_weight"] = (ours + "affine.weight", "dense")
            table[tf + "mod_bias"] = (ours + "affine.bias", "plain")
            table[tf + "bias"] = (ours + "bias", "plain")
            if spec.name.endswith("ToRGB"):
                continue
            table[tf + "noise_strength"] = (ours + "noise_strength", "plain")
        table[f"synthesis/noise{noise_index}"] = (ours + "noise", "plain")
        noise_index += 1
    if G.kind == "stylegan":
        table["synthesis/ToRGB_lod0/weight"] = ("to_rgb_weight", "conv")
        table["synthesis/ToRGB_lod0/bias"] = ("to_rgb_bias", "plain")
    else:
        table["synthesis/4x4/Const/const"] = ("const", "plain")
    return table


def _is_unused_official_variable(name):
    """Variables NVIDIA stores that don't affect the final-resolution picture: the progressive-growing
    level of detail and StyleGAN's ToRGB layers for lower resolutions."""
    return name in ("lod", "synthesis/lod") or (name.startswith("synthesis/ToRGB_lod") and not name.startswith("synthesis/ToRGB_lod0/"))


# How NVIDIA's TensorFlow layouts map onto torch's: dense [in, out] -> [out, in]; conv [k, k, in, out] -> [out, in, k, k].
_LAYOUTS = {"plain": (None, lambda a: a), "dense": (2, lambda a: a.T), "conv": (4, lambda a: a.transpose(3, 2, 0, 1))}


def _state_dict(path, shapes, variables):
    """The file's variables as the state dict of generator ``shapes`` (a skeleton), after checking that their names,
    dtypes and shapes are exactly the ones it needs."""
    layout = official_variable_layout(shapes)
    missing = sorted(set(layout) - set(variables))
    unexpected = sorted(n for n in set(variables) - set(layout) if not _is_unused_official_variable(n))
    if missing or unexpected:
        raise ModelFileError(
            f"{path}: variables do not match a {shapes.kind} generator at {shapes.resolution}px: "
            f"missing {missing[:20]}{' ...' if len(missing) > 20 else ''}, "
            f"unexpected [{', '.join(map(shown, unexpected[:20]))}{' ...' if len(unexpected) > 20 else ''}]"
        )
    expected = shapes.state_dict()
    state = {}
    for tf_name, (key, how) in layout.items():
        value = variables[tf_name]
        if value.dtype.kind != "f":
            raise ModelFileError(f"{path}: variable {tf_name} is not a float array")
        ndim, to_torch = _LAYOUTS[how]
        if ndim is None or value.ndim == ndim:
            value = to_torch(value)
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ModelFileError(
                f"{path}: variable {tf_name} has shape {list(variables[tf_name].shape)}, which does not fit "
                f"{key} {list(expected[key].shape)} of the architecture in the file's kwargs"
            )
        state[key] = torch.from_numpy(np.array(value, dtype=np.float32, order="C"))
    return state


def load_official(path, device="cpu"):
    """A generator built from an official NVIDIA pickle (architecture from its stored kwargs)."""
    record = read_official_pickle(path)
    kind, config = _architecture(path, record)
    shapes = skeleton(path, kind, config)
    state = _state_dict(path, shapes, record.flat_variables())
    G = build_generator(kind, shapes.config)
    with torch.no_grad():
        G.load_state_dict(state)
    return G.to(device).eval().requires_grad_(False)
