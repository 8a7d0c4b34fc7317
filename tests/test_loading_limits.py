"""Hostile model files: each is refused with a ModelFileError before it can crash us or make us allocate.

The files are written opcode by opcode, as an attacker would write them (``_Pickle`` below). The dangerous ones
are loaded in a child process, one fork per file after ganedit is imported, under an address-space cap and an
alarm; each fork reports its outcome and how much its peak resident memory grew. Before these checks, the same
files crashed the interpreter (SIGSEGV), took 2 to 7 GB or a minute, or ended in tracebacks.
"""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from official_files import write_stylegan2_pickle

from ganedit import ModelFileError, load_generator
from ganedit.loading.limits import skeleton
from ganedit.loading.official import read_official_pickle

REPO = Path(__file__).resolve().parent.parent
MAX_GROWTH_MB = 100  # peak resident memory a refused file may add (the bombs below took up to 6.8 GB)

# ---------------------------------------------------------------------------------------------------------
# Pickles, opcode by opcode.


class _Pickle:
    """Builders of raw pickle opcodes (bytes)."""

    @staticmethod
    def file(body, protocol=4):
        return bytes([0x80, protocol]) + body + b"."

    @staticmethod
    def glob(module, name):
        return b"c" + f"{module}\n{name}\n".encode()

    @staticmethod
    def call(func, *args):
        return func + b"(" + b"".join(args) + b"tR"

    @staticmethod
    def data(raw):
        return b"B" + struct.pack("<I", len(raw)) + raw

    @classmethod
    def value(cls, v):
        """Opcodes for plain data; bytes are taken as opcodes already."""
        if isinstance(v, bytes):
            return v
        if v is None or isinstance(v, bool):
            return {None: b"N", True: b"\x88", False: b"\x89"}[v]
        if isinstance(v, int):
            return b"J" + struct.pack("<i", v)
        if isinstance(v, float):
            return b"G" + struct.pack(">d", v)
        if isinstance(v, str):
            return b"X" + struct.pack("<I", len(v.encode())) + v.encode()
        if isinstance(v, tuple):
            return b"(" + b"".join(map(cls.value, v)) + b"t"
        if isinstance(v, list):
            return b"](" + b"".join(map(cls.value, v)) + b"e"
        return b"}(" + b"".join(cls.value(k) + cls.value(x) for k, x in v.items()) + b"u"

    @classmethod
    def dtype(cls, name, state=None):
        """numpy.dtype(name, 0, 1) as numpy 1.x writes it, then BUILD with ``state`` (by default numpy's own)."""
        state = state if state is not None else np.dtype(name).__reduce__()[2]
        return cls.call(cls.glob("numpy", "dtype"), cls.value(name), b"K\x00K\x01") + cls.value(state) + b"b"

    @classmethod
    def array(cls, a, shape=None):
        """numpy's own pickling of array ``a`` (claiming ``shape`` if given): an empty array, then BUILD."""
        empty = cls.call(cls.glob("numpy.core.multiarray", "_reconstruct"), cls.glob("numpy", "ndarray"),
                         cls.value((0,)), b"C\x01b")
        state = (1, shape or a.shape, cls.dtype(a.dtype.str[1:]), False, cls.data(a.tobytes()))
        return empty + cls.value(state) + b"b"

    @classmethod
    def network(cls, func, kwargs, variables=(), components=None):
        """A dnnlib.tflib.network.Network: NEWOBJ, then BUILD with its state dict."""
        state = {"version": 4, "name": func, "static_kwargs": kwargs, "components": components or {},
                 "build_module_src": "", "build_func_name": func,
                 "variables": variables if isinstance(variables, bytes) else list(variables)}
        return cls.glob("dnnlib.tflib.network", "Network") + b")\x81" + cls.value(state) + b"b"

    @classmethod
    def generator(cls, synthesis="G_synthesis_stylegan2", top="G_main", **kwargs):
        """A Gs record with small widths (overridden by ``kwargs``) and no variables."""
        kw = {"latent_size": 16, "dlatent_size": 16, "mapping_fmaps": 16, "fmap_base": 256, "fmap_max": 32,
              "resolution": 16, **kwargs}
        parts = {"synthesis": cls.network(synthesis, kw), "mapping": cls.network("G_mapping", kw)}
        return cls.file(cls.network(top, kw, components=parts))


P = _Pickle
_MA = "numpy.core.multiarray"
_FORGED_FIELD = (3, "|", None, ("f0",), {"f0": (P.dtype("O"), 0)}, 8, 1, 0)  # an object field, flags 0


def _safetensors(config, metadata=None):
    """A safetensors file by hand (8-byte header length, JSON header, data) holding one small tensor."""
    ours = {"format_version": 1, "kind": "stylegan2", "config": config}
    header = {"w_avg": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
              "__metadata__": metadata if metadata is not None else {"ganedit": json.dumps(ours)}}
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + bytes(16)


_SMALL = {"z_dim": 16, "w_dim": 16, "mapping_fmaps": 16, "fmap_base": 256, "fmap_max": 32, "resolution": 16}

# name -> (file contents, words the refusal must contain). Each comment says what the file did before.
HOSTILE = {
    # 1 MB: a dict keyed by a 10^6-deep tuple, no global at all; hashing the key overflowed the C stack (SIGSEGV).
    "deep_key.pkl": (P.file(b"})" + b"\x85" * 10**6 + b"K\x00s"), "nested more than"),
    # 33 bytes: numpy.ndarray((250_000_000,), 'O'), an object array filled with None: 1.9 GB.
    "object_array.pkl": (P.file(P.call(P.glob("numpy", "ndarray"), P.value((250_000_000,)), P.value("O")), 2),
                         "numpy.ndarray"),
    # 219 bytes: eight float64 arrays of 1 GiB from numpy's _reconstruct: 8 GB of address space asked for.
    "eight_gigabytes.pkl": (P.file(b"](" + P.call(P.glob(_MA, "_reconstruct"), P.glob("numpy", "ndarray"),
                                                  P.value((2**27,)), P.value("f8")) * 8 + b"e"), "_reconstruct"),
    # 68 bytes: a zero-filled void scalar of 2 GB: 3.8 GB.
    "void_scalar.pkl": (P.file(P.glob(_MA, "scalar") + P.glob("numpy", "dtype") + P.value("V2000000000")
                               + b"\x89\x88\x87R\x85R", 2), "'V2000000000'"),
    # A void dtype given, by BUILD, an object field with flags 0, as the kwarg resolution: int() of the scalar
    # read the file's bytes 'AAAAAAAA' as an object pointer (SIGSEGV).
    "forged_object_field.pkl": (P.generator(resolution=P.call(P.glob(_MA, "scalar"), P.dtype("V8", _FORGED_FIELD),
                                                              P.data(b"A" * 8))), "'V8'"),
    # float64 with a BUILD state of numpy's own format but a field: accepted before.
    "forged_float_state.pkl": (P.file(P.dtype("f8", (3, "|", None, ("f0",), {"f0": (P.dtype("f4"), 0)}, 4, 1, 0))),
                               "allowed: numpy's own"),
    # Architecture bombs in the pickled kwargs: 6.8 GB then a RuntimeError (OOM-killed without a cap);
    # 76 s and 5.3 GB before the variables were compared.
    "resolution_bomb.pkl": (P.generator(resolution=2**20), "resolution=1048576"),
    "mapping_bomb.pkl": (P.generator(mapping_layers=10**6), "mapping_layers=1000000"),
    # And in our safetensors header: 6.8 GB then a RuntimeError; 75 s and 6.1 GB.
    "resolution_bomb.safetensors": (_safetensors({**_SMALL, "resolution": 2**20}), "resolution=1048576"),
    "mapping_bomb.safetensors": (_safetensors({**_SMALL, "mapping_layers": 10**6}), "mapping_layers=1000000"),
    # 15 bytes declaring 2 GiB of bytes: allocated (as address space) before the read found nothing there.
    "declared_length.pkl": (P.file(b"\x8e" + struct.pack("<Q", 2**31) + b"xyz"), "bytes asked for"),
    # 1 MB: one text turned into bytes 1000 times by _codecs.encode (the memo makes reuse cheap): 1 GB.
    "amplification.pkl": (P.file(P.value("A" * 2**20) + b"\x94(" + P.call(P.glob("_codecs", "encode"), b"h\x00",
                                                                        P.value("latin1")) * 1000 + b"l"),
                          "_codecs.encode"),
}
SPARSE = "sparse_3gb.pkl"  # a pickle header, then 3 GB of zeros (a sparse file): read whole before, 3 GB; now the
# first byte after the header is refused (by the format scan, then by the reader)

_CHILD = r"""
import json, os, resource, signal, sys
from ganedit.loading import load_generator

def status(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key + ":"))

for path in sys.argv[1:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        signal.alarm(30)
        resource.setrlimit(resource.RLIMIT_AS, ((status("VmSize") << 10) + (1 << 30),) * 2)  # +1 GiB
        before = status("VmHWM")
        try:
            load_generator(path)
            outcome = "loaded"
        except BaseException as err:
            outcome = f"{type(err).__name__}: {err}"
        os.write(write, json.dumps({"outcome": outcome[:2000], "grew_mb": (status("VmHWM") - before) / 1024}).encode())
        os._exit(0)
    os.close(write)
    _, status_code = os.waitpid(pid, 0)
    report = json.loads(os.read(read, 1 << 16) or "{}")
    print(json.dumps({"file": os.path.basename(path), "exit": os.waitstatus_to_exitcode(status_code), **report}))
"""


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """{file name: {'exit', 'outcome', 'grew_mb'}} from loading every hostile file in its own fork."""
    folder = tmp_path_factory.mktemp("hostile")
    for name, (data, _) in HOSTILE.items():
        (folder / name).write_bytes(data)
    with open(folder / SPARSE, "wb") as f:
        f.write(b"\x80\x04")
        f.truncate(3 << 30)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    paths = [str(folder / name) for name in [*HOSTILE, SPARSE]]
    result = subprocess.run([sys.executable, "-c", _CHILD, *paths], capture_output=True, text=True, env=env,
                            cwd=REPO, timeout=120)
    (folder / SPARSE).unlink()  # (it takes no disk, but looks like 3 GB to anything that copies it)
    assert result.returncode == 0, result.stderr
    return {r["file"]: r for r in map(json.loads, result.stdout.splitlines())}


def _assert_refused(report, words):
    assert report["exit"] == 0, f"the load killed the process: {report}"
    assert report["outcome"].startswith("ModelFileError: "), report["outcome"]
    assert report["file"] in report["outcome"] and words in report["outcome"], report["outcome"]
    assert report["grew_mb"] < MAX_GROWTH_MB, report


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_file_is_refused_before_it_costs_anything(hostile, name):
    _assert_refused(hostile[name], HOSTILE[name][1])


def test_pickles_are_read_as_a_stream(hostile):
    _assert_refused(hostile[SPARSE], "invalid load key 0x00")


# ---------------------------------------------------------------------------------------------------------
# Malformed records and headers: each gave a traceback of its own before (the exception in the comment).

_STYLEGAN = dict(synthesis="G_synthesis", top="G_style")
MALFORMED_PICKLES = {
    "variables is an int": (P.file(P.network("G_main", {}, variables=b"K\x05")), "a list of variables"),  # TypeError
    "a variable that is not a pair": (P.file(P.network("G_main", {}, variables=[("a",)])),  # ValueError
                                      "(name, numpy value) pair"),
    "a component that is an int": (P.file(P.network("G_main", {}, components={"synthesis": 5})),  # AttributeError
                                   "component 'synthesis'"),
    "static_kwargs is a list": (P.file(P.network("G_main", b"](K\x01e")), "static_kwargs is a list"),  # TypeError
    "blur_filter is an int": (P.generator(**_STYLEGAN, blur_filter=3), "blur_filter=3"),  # TypeError
    "a 7-tap blur filter": (P.generator(**_STYLEGAN, blur_filter=[1, 6, 15, 20, 15, 6, 1]), "2 to 6 finite numbers"),
    "a 1-tap resample kernel": (P.generator(resample_kernel=[1]), "resample_kernel=[1]"),
    "resolution 0": (P.generator(resolution=0), "resolution=0"),  # ValueError: math domain error
    "resolution a string": (P.generator(resolution="16"), "resolution='16'"),  # accepted, then mismatched
    "fmap_decay 1e308": (P.generator(fmap_decay=1e308), "fmap_decay"),  # OverflowError
    "channels rounding to 0": (P.generator(**_STYLEGAN, fmap_base=3), "without channels"),  # ZeroDivisionError
    "mapping_fmaps -1": (P.generator(mapping_fmaps=-1), "mapping_fmaps=-1"),  # RuntimeError
    "num_channels an array": (P.generator(num_channels=P.array(np.arange(2.0))), "num_channels"),  # ValueError
    "a set": (P.file(b"\x8f(K\x01\x90"), "sets"),
    "a list that contains itself": (P.file(b"]\x94(h\x00e"), "contains itself"),
    "a dict filled after it was stored": (P.file(b"}\x94\x85h\x00X\x01\x00\x00\x00kNs\x86"), "filled after"),
    "an array with more data than its shape": (P.file(P.array(np.zeros(3), shape=(2,))), "with 24 bytes of data"),
    "an unknown global": (P.file(P.call(P.glob("builtins", "eval"), P.value("1"))), "builtins.eval"),
    "too many opcodes": (P.file(b"N0" * 500_001 + b"N"), "opcodes"),
}
MALFORMED_HEADERS = {
    "JSON that is a list": (lambda: struct.pack("<Q", 6) + b"[1, 2]", "unreadable"),  # AttributeError
    "JSON nested 100000 deep": (lambda: struct.pack("<Q", 200_000) + b"[" * 100_000 + b"]" * 100_000,
                                "unreadable"),  # RecursionError
    "a 2 MiB header": (lambda: struct.pack("<Q", 2 << 20) + b" " * (2 << 20), "header of 2097152 bytes"),
    "our entry nested 10000 deep": (lambda: _safetensors({}, metadata={"ganedit": "[" * 10_000 + "]" * 10_000}),
                                    "not a ganedit"),  # RecursionError
    "a config that is a list": (lambda: _safetensors([1, 2]), "not a dict"),  # SafetensorError (wrapped)
    "resolution 'x'": (lambda: _safetensors({**_SMALL, "resolution": "x"}), "resolution='x'"),  # ValueError
    "fmap_min 10**30": (lambda: _safetensors({**_SMALL, "fmap_min": 10**30}), "fmap_min"),  # TypeError
    "fmap_decay NaN": (lambda: _safetensors({**_SMALL, "fmap_decay": float("nan")}), "fmap_decay=nan"),  # ValueError
    "an unknown setting": (lambda: _safetensors({**_SMALL, "blur_filter": [1, 2, 1]}), "unknown stylegan2 settings"),
    "another format version": (lambda: _safetensors(_SMALL, metadata={"ganedit": '{"format_version": 2}'}),
                               "not format 1"),
    "offsets beyond the file": (lambda: _safetensors(_SMALL)[:-4], "unreadable safetensors data"),
}


@pytest.mark.parametrize("case", MALFORMED_PICKLES)
def test_malformed_pickle_is_a_model_file_error(tmp_path, case):
    data, words = MALFORMED_PICKLES[case]
    path = tmp_path / "malformed.pkl"
    path.write_bytes(data)
    with pytest.raises(ModelFileError) as err:
        load_generator(path)
    assert str(path) in str(err.value) and words in str(err.value), str(err.value)


@pytest.mark.parametrize("case", MALFORMED_HEADERS)
def test_malformed_safetensors_is_a_model_file_error(tmp_path, case):
    make, words = MALFORMED_HEADERS[case]
    path = tmp_path / "malformed.safetensors"
    path.write_bytes(make())
    with pytest.raises(ModelFileError) as err:
        load_generator(path)
    assert str(path) in str(err.value) and words in str(err.value), str(err.value)


def test_safetensors_tensors_must_be_float32(tmp_path):
    """A tensor declared float16 with the right shape loaded silently before (converted on the way)."""
    from safetensors.torch import save_file

    write_stylegan2_pickle(tmp_path / "tiny.pkl", resolution=16)
    G = load_generator(tmp_path / "tiny.pkl")
    tensors = {**G.state_dict(), "w_avg": G.w_avg.half()}
    header = {"format_version": 1, "kind": G.kind, "config": G.config}
    save_file(tensors, str(tmp_path / "half.safetensors"), metadata={"ganedit": json.dumps(header)})
    with pytest.raises(ModelFileError, match=r"tensor w_avg is F16 \[16\], the architecture needs F32 \[16\]"):
        load_generator(tmp_path / "half.safetensors")


# ---------------------------------------------------------------------------------------------------------
# What stays allowed.

def test_numpy_1_arrays_load_exactly(tmp_path):
    """numpy 1.x writes dtype('f4', 0, 1) with integer flags (numpy 2: booleans): both are NVIDIA's files."""
    arrays = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.array([True, False]),
              "c": np.arange(3, dtype=np.uint8), "d": np.float64(0.25) * np.ones((1, 1, 2, 2))}
    path = tmp_path / "arrays.pkl"
    path.write_bytes(P.file(P.network("G_main", {}, variables=[(k, P.array(a)) for k, a in arrays.items()])))
    got = read_official_pickle(path).flat_variables()
    for name, a in arrays.items():
        assert got[name].dtype == a.dtype and np.array_equal(got[name], a)


@pytest.mark.parametrize("kind, config", [
    ("stylegan", {"resolution": 1024, "z_dim": 512, "w_dim": 512, "mapping_layers": 8, "fmap_base": 8192}),  # FFHQ
    ("stylegan2", {"resolution": 512, "z_dim": 512, "w_dim": 512, "mapping_layers": 8, "fmap_base": 16384}),  # cars
])
def test_nvidia_architectures_are_within_bounds(kind, config):
    G = skeleton("nvidia.pkl", kind, config)
    assert G.w_avg.device.type == "meta" and G.resolution == config["resolution"]


def test_the_largest_allowed_architecture_is_bounded():
    widest = {"resolution": 2048, "z_dim": 1024, "w_dim": 1024, "mapping_layers": 32, "mapping_fmaps": 1024,
              "fmap_base": 1 << 16, "fmap_max": 1024, "fmap_decay": 0.0}
    for kind in ("stylegan", "stylegan2"):
        values = sum(t.numel() for t in skeleton("widest", kind, widest).state_dict().values())
        assert values < 300e6  # 1.2 GB of float32, and only ever built for a file holding as many values
    with pytest.raises(ModelFileError, match=r"resolution=4096 .*a power of two from 4 to 2048"):
        skeleton("too-big", "stylegan2", {**widest, "resolution": 4096})
    assert torch.get_default_device().type == "cpu"
