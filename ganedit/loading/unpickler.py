"""The allow-list unpickler every model pickle goes through: it rebuilds inert data, never runs the file's code,
and never lets the file decide what we allocate.

``AllowListUnpickler`` is pickle's pure-Python unpickler with every opcode that builds or calls something checked,
so that the file is read as a stream and rebuilds nothing but plain data and what a format's subclass allows:

- globals: only those in ``GLOBALS``, each called (``CALLS``) or given a state (``BUILDS``) only by a checker that
  accepts the arguments the format's files give it. Here: dicts, and numpy's array, scalar and dtype constructors
  with the arguments numpy writes: an empty array (filled by its state), a scalar of its dtype's size, a dtype
  named as a plain numeric type whose pickled state is exactly the one numpy writes for it (no object, void or
  structured dtypes: those let file bytes act as pointers);
- sizes: no read may ask for more bytes than are left in the stream, an array's data must be exactly its shape
  times its item size, and the number of opcodes is bounded (so is every container);
- structure: dict keys are strings, integers or flat tuples (hashing a deep key overflows the C stack), data nests
  at most MAX_DEPTH deep, nothing is filled once stored in something else (so nothing contains itself).
"""

import codecs
import collections
import math
import os
import pickle

import numpy as np

from .errors import ModelFileError, shown

MAX_OPCODES = 1_000_000  # a 1024 px TensorFlow (G, D, Gs) file has ~10 k (~25 per variable), an ada pickle ~30 k
MAX_DEPTH = 32  # TensorFlow files nest ~8 deep, ada pickles ~21 (4 per module level: record, meta, state, _modules)
MAX_LINE = 1 << 16  # text-protocol arguments (numbers, names)

NUMPY_RECONSTRUCT = np.zeros(1).__reduce__()[0]  # numpy's own array-unpickling function
NUMPY_SCALAR = np.float32(0).__reduce__()[0]  # and its scalar-unpickling function
# The plain numeric dtypes, by the names numpy pickles them under, and the state it pickles with each.
_DTYPES = {name: np.dtype(name) for name in ("f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1")}
_DTYPE_STATES = {dtype: dtype.__reduce__()[2] for dtype in _DTYPES.values()}  # f4: (3, '<', None, None, None, -1,...)


def same(value, expected):
    """``value == expected`` for plain constants (and tuples of them), types first: no object from the file decides."""
    if type(value) is not type(expected):
        return False
    if type(expected) is tuple:
        return len(value) == len(expected) and all(map(same, value, expected))
    return value == expected


def _plain_key(key):
    """A dict key whose hash can't recurse: a string, an integer, or a short flat tuple of strings and integers."""
    return type(key) in (str, int) or (
        type(key) is tuple and len(key) <= 8 and all(type(k) in (str, int) for k in key))


class Stream:
    """A file as the unpickler reads it: a read longer than what is left is refused before it is attempted (so a
    forged length can't make us allocate more than the file holds), and text lines stay short. ``size`` is the
    file's, unless given (a member of a zip archive)."""

    def __init__(self, f, size=None):
        self._file = f
        self.size = self.left = os.fstat(f.fileno()).st_size - f.tell() if size is None else size

    def read(self, n):
        if not 0 <= n <= self.left:
            raise ModelFileError(f"{n} bytes asked for where the file has {self.left} left (truncated, or forged)")
        data = self._file.read(n)
        self.left -= len(data)
        return data

    def skip(self, n):
        """Pass over ``n`` bytes without reading them (data that is read later, if at all)."""
        if not 0 <= n <= self.left:
            raise ModelFileError(f"{n} bytes to pass over where the file has {self.left} left (truncated, or forged)")
        self._file.seek(n, os.SEEK_CUR)
        self.left -= n

    def readline(self):
        line = self._file.readline(min(MAX_LINE, self.left))
        self.left -= len(line)
        if len(line) == MAX_LINE and not line.endswith(b"\n"):
            raise ModelFileError(f"a text line longer than {MAX_LINE} bytes")
        return line


def _counted(load):
    def step(self):
        self.opcodes += 1
        if self.opcodes > MAX_OPCODES:
            raise ModelFileError(f"more than {MAX_OPCODES} pickle opcodes (model files have at most tens of thousands)")
        load(self)
    return step


def _refused(what):
    def load(self):
        raise ModelFileError(f"the file uses {what}, which model files never do")
    return load


def _nested(load):
    """An opcode that builds a tuple or list from stack items (the new container holds them)."""
    def step(self):
        load(self)
        self.nest(self.stack[-1], self.stack[-1])
    return step


class _Opcodes(dict):
    def __missing__(self, code):
        raise pickle.UnpicklingError(f"invalid load key {code:#04x}")


def _made_empty(unpickler, func, args):
    if args:
        raise ModelFileError(f"a {func.__name__} made from arguments; it is made empty, then filled")
    return func()


def _dtype(unpickler, func, args):
    if (len(args) == 3 and type(args[0]) is str and args[0] in _DTYPES
            and all(type(flag) in (bool, int) and flag in (0, 1) for flag in args[1:])):
        return _DTYPES[args[0]]
    raise ModelFileError(
        f"numpy.dtype{shown(args)}; allowed: plain numeric types ({', '.join(_DTYPES)}), no object, void or "
        "structured dtypes"
    )


def _empty_array(unpickler, func, args):
    if same(args, (np.ndarray, (0,), b"b")):
        return func(*args)
    raise ModelFileError(f"numpy's _reconstruct{shown(args)}; allowed: (ndarray, (0,), b'b'), an empty array")


def _scalar(unpickler, func, args):
    if (len(args) == 2 and isinstance(args[0], np.dtype) and args[0] in _DTYPE_STATES
            and type(args[1]) is bytes and len(args[1]) == args[0].itemsize):
        return func(*args)
    raise ModelFileError(f"numpy's scalar{shown(args)}; allowed: a plain numeric dtype and its bytes")


def _encode(unpickler, func, args):
    if not (len(args) == 2 and type(args[0]) is str and same(args[1], "latin1")):
        raise ModelFileError(f"_codecs.encode{shown(args)}; allowed: (text, 'latin1')")
    unpickler.spend(len(args[0]), "_codecs.encode")
    return func(*args)


def _fill_array(unpickler, array, state):
    """numpy's array state (1, shape, dtype, fortran_order, data), with exactly the data the shape needs."""
    if not (type(state) is tuple and len(state) == 5 and same(state[0], 1)):
        raise ModelFileError(f"an array state {shown(state)}; allowed: (1, shape, dtype, fortran_order, bytes)")
    _, shape, dtype, fortran, data = state
    size = unpickler.stream.size  # no dimension can be longer than the file
    if not (type(shape) is tuple and len(shape) <= 32 and all(type(n) is int and 0 <= n <= size for n in shape)
            and isinstance(dtype, np.dtype) and dtype in _DTYPE_STATES and type(fortran) is bool
            and type(data) is bytes):
        raise ModelFileError(f"an array state {shown(state)}; allowed: (1, shape, plain dtype, bool, bytes)")
    if math.prod(shape) * dtype.itemsize != len(data):
        raise ModelFileError(f"an array of shape {shape} {dtype} with {len(data)} bytes of data")
    array.__setstate__(state)


def _dtype_state(unpickler, dtype, state):
    if not same(state, _DTYPE_STATES[dtype]):
        raise ModelFileError(f"dtype {dtype} with the state {shown(state)}; allowed: numpy's own, "
                             f"{_DTYPE_STATES[dtype]}")


def _empty_dict_state(unpickler, inst, state):
    if not (state is None or same(state, {})):  # an EasyDict's empty __dict__
        raise ModelFileError(f"a dict with attributes {shown(state)}")


class AllowListUnpickler(pickle._Unpickler):
    """pickle's pure-Python unpickler, with every opcode that builds or calls something checked (see the module
    docstring). Every opcode runs the method of its name: pickle's own, or the checked one defined here.

    A format's subclass extends the class tables: ``GLOBALS`` ((module, name) -> object), ``CALLS`` (object ->
    checker(self, func, args) returning the value), ``BUILDS`` (type -> checker(self, inst, state)) and
    ``CONTAINERS`` (the types that hold other objects, for the structure checks).
    """

    GLOBALS = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): NUMPY_RECONSTRUCT,
        ("numpy._core.multiarray", "_reconstruct"): NUMPY_RECONSTRUCT,
        ("numpy.core.multiarray", "scalar"): NUMPY_SCALAR,
        ("numpy._core.multiarray", "scalar"): NUMPY_SCALAR,
        ("_codecs", "encode"): codecs.encode,  # how protocol-2 pickles store bytes
    }
    CALLS = {dict: _made_empty, np.dtype: _dtype, NUMPY_RECONSTRUCT: _empty_array, NUMPY_SCALAR: _scalar,
             codecs.encode: _encode}
    BUILDS = {np.ndarray: _fill_array, np.dtype: _dtype_state, dict: _empty_dict_state}
    CONTAINERS = (tuple, list, dict)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.dispatch = _dispatch(cls)

    def __init__(self, stream):
        super().__init__(stream)
        self.stream = stream
        self.opcodes = 0
        self.spent = collections.Counter()  # bytes made by each call from smaller inputs, each at most the file's size
        self.nodes = {}  # id -> [container, depth, stored] for each container that holds or is held (kept alive)

    def spend(self, n, what):
        """Count ``n`` bytes made from the file by ``what``: the memo makes reusing one input cheap, so the sum of
        each call's is bounded."""
        self.spent[what] += n
        if self.spent[what] > self.stream.size:
            raise ModelFileError(f"more bytes from {what} than the file holds (the same data, reused)")

    def find_class(self, module, name):
        try:
            return self.GLOBALS[(module, name)]
        except KeyError:
            raise ModelFileError(
                f"the file asks for the Python object {module}.{name}, which is not part of this model format "
                f"(allowed: {', '.join(f'{m}.{n}' for m, n in self.GLOBALS)})"
            ) from None

    def persistent_load(self, pid):
        raise ModelFileError("the file uses persistent references, which this model format never does")

    load_empty_set = load_additems = load_frozenset = _refused("sets")
    load_bytearray8 = load_next_buffer = load_readonly_buffer = _refused("protocol-5 buffers")
    load_tuple = _nested(pickle._Unpickler.load_tuple)
    load_tuple1 = _nested(pickle._Unpickler.load_tuple1)
    load_tuple2 = _nested(pickle._Unpickler.load_tuple2)
    load_tuple3 = _nested(pickle._Unpickler.load_tuple3)
    load_list = _nested(pickle._Unpickler.load_list)

    def nest(self, container, items):
        """Record that ``items`` go into ``container``, refusing deep or self-containing data."""
        if not items:
            return
        node = self.nodes.setdefault(id(container), [container, 1, False])
        if node[2]:
            raise ModelFileError("an object filled after it was stored in another (recursive data)")
        for item in items:
            if item is container:
                raise ModelFileError("an object that contains itself")
            if isinstance(item, self.CONTAINERS):
                inner = self.nodes.setdefault(id(item), [item, 1, True])
                inner[2] = True
                node[1] = max(node[1], inner[1] + 1)
        if node[1] > MAX_DEPTH:
            raise ModelFileError(f"data nested more than {MAX_DEPTH} deep (model files nest at most about 21 deep)")

    def _fill_dict(self, target, items):
        if type(target) is not dict or len(items) % 2:
            raise ModelFileError(f"dict items (an odd number, or for a {type(target).__name__})")
        keys = items[::2]
        if not all(map(_plain_key, keys)):
            bad = next(k for k in keys if not _plain_key(k))
            raise ModelFileError(f"a dict key {shown(bad)}; allowed: strings, integers and short flat tuples")
        self.nest(target, items)
        target.update(zip(keys, items[1::2]))

    def _fill_list(self, target, items):
        if type(target) is not list:
            raise ModelFileError(f"list items for a {type(target).__name__}")
        self.nest(target, items)
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
        """The one place where the file makes us call something: an allowed global, with only the arguments its
        checker accepts, checked before the call can allocate anything."""
        if type(args) is not tuple:
            raise ModelFileError(f"call arguments that are a {type(args).__name__}, not a tuple")
        check = next((c for f, c in self.CALLS.items() if f is func), None)  # by identity: nothing of the file's
        if check is None:
            raise ModelFileError(f"a call of {shown(func)}, which this model format never makes")
        return check(self, func, args)

    def load_reduce(self):
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args)

    load_newobj = load_reduce  # cls.__new__(cls, *args): for the allowed classes, the same as calling them

    def load_newobj_ex(self):
        if not same(self.stack.pop(), {}):
            raise ModelFileError("keyword arguments to a constructor, which model files never use")
        self.load_reduce()

    def _instantiate(self, klass, args):  # INST and OBJ
        self.append(self._call(klass, tuple(args)))

    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        check = self.BUILDS.get(np.dtype if isinstance(inst, np.dtype) else type(inst))
        if check is None:
            raise ModelFileError(f"a state for a {type(inst).__name__}, which this model format never gives one")
        check(self, inst, state)


def _dispatch(cls):
    """The opcode table of ``cls``: each opcode runs the method of its name (checked where ``cls`` defines one)."""
    return _Opcodes({code: _counted(getattr(cls, load.__name__)) for code, load in pickle._Unpickler.dispatch.items()})


AllowListUnpickler.dispatch = _dispatch(AllowListUnpickler)


def unpickle(unpickler):
    """The pickle ``unpickler`` (an AllowListUnpickler on a Stream) reads; any failure is a ModelFileError."""
    try:
        return unpickler.load()
    except ModelFileError:
        raise
    except Exception as err:  # noqa: BLE001 - garbage can fail in many ways (truncated data, unknown opcodes, ...)
        why = f"{type(err).__name__}: {str(err)[:300]}"
        raise ModelFileError(f"not a readable pickle (truncated or corrupt?): {why}") from None
