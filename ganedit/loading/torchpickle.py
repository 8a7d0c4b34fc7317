"""torch's tensors inside pickles, read by the allow-list unpickler: the tensors of a plainly pickled torch module
(what NVIDIA's stylegan2-ada-pytorch training loop writes with pickle.dump) and torch.save files (zip archives,
and the single-stream format torch wrote before 1.6) - without torch.load, which runs its own unpickler (torch's
``weights_only`` one overflows the C stack on a pickle nested a million deep) and allocates what a file declares.

A tensor pickles as ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)``, a
parameter as ``torch._utils._rebuild_parameter(tensor, requires_grad, hooks)``. The storage is
- in a torch.save file, a persistent id ('storage', torch.FloatStorage, key, location, element count): its bytes
  are the archive member ``<name>/data/<key>`` (zip), or follow the file's pickles, each after its element count
  (the older format);
- in a plain pickle, ``torch.storage._load_from_bytes(b)``, where ``b`` is a whole file of torch.save's older
  format holding that one storage; torch would torch.load it, we read it as above.
Both become records: a Storage is a dtype, an element count and a way to fetch its bytes, checked to be exactly
that many; a TensorRecord is a storage and a geometry checked to lie inside it. Bytes are read only when a tensor
is loaded, so what a checkpoint holds besides the generator (discriminator, optimizer states) costs nothing.
"""

import contextlib
import io
import math
import os
import zipfile
from dataclasses import dataclass
from functools import partial

import torch
import torch._utils
import torch.storage

from .errors import ModelFileError, shown
from .unpickler import AllowListUnpickler, Stream, same, unpickle

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # the number torch.save's older format starts with
LEGACY_PROTOCOL = 1001
MAX_DIMS = 8

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


@dataclass(frozen=True)
class StorageType:
    """What the global ``torch.FloatStorage`` (and its kin) stands for in a persistent id: a dtype."""

    dtype: torch.dtype


class Storage:
    """A storage's dtype and element count; ``fetch`` (set once the bytes are located) returns exactly its bytes."""

    def __init__(self, dtype, numel):
        self.dtype, self.numel, self.fetch = dtype, numel, None

    @property
    def nbytes(self):
        return self.numel * self.dtype.itemsize


@dataclass(frozen=True)
class TensorRecord:
    storage: Storage
    offset: int
    shape: tuple
    stride: tuple

    @property
    def dtype(self):
        return self.storage.dtype

    def load(self):
        """The tensor (a copy), reading its storage's bytes now."""
        if self.storage.numel == 0:
            return torch.empty(self.shape, dtype=self.dtype)
        flat = torch.frombuffer(bytearray(self.storage.fetch()), dtype=self.dtype)
        return torch.as_strided(flat, self.shape, self.stride, self.offset).clone()


def _ints(value):
    return type(value) is tuple and len(value) <= MAX_DIMS and all(type(n) is int and n >= 0 for n in value)


def _tensor(unpickler, func, args):
    if not (len(args) in (6, 7) and isinstance(args[0], Storage) and type(args[1]) is int and args[1] >= 0
            and _ints(args[2]) and _ints(args[3]) and len(args[2]) == len(args[3]) and type(args[4]) is bool
            and same(args[5], {}) and (len(args) == 6 or same(args[6], {}))):
        raise ModelFileError(f"_rebuild_tensor_v2{shown(args)}; allowed: (storage, offset, size, stride, "
                             "requires_grad, no hooks)")
    storage, offset, shape, stride = args[:4]
    end = offset + sum((n - 1) * s for n, s in zip(shape, stride)) + 1 if math.prod(shape) else 0
    if end > storage.numel:
        raise ModelFileError(f"a tensor of size {shape}, stride {stride} at offset {offset}: beyond its storage of "
                             f"{storage.numel} elements")
    return TensorRecord(storage, offset, shape, stride)


def _parameter(unpickler, func, args):
    if not (len(args) == 3 and isinstance(args[0], TensorRecord) and type(args[1]) is bool and same(args[2], {})):
        raise ModelFileError(f"_rebuild_parameter{shown(args)}; allowed: (tensor, requires_grad, no hooks)")
    return args[0]


def _storage_from_bytes(unpickler, func, args):
    if not (len(args) == 1 and type(args[0]) is bytes):
        raise ModelFileError(f"_load_from_bytes{shown(args)}; allowed: (bytes,)")
    unpickler.spend(len(args[0]), "_load_from_bytes")
    storage = read_legacy(io.BytesIO(args[0]), len(args[0]))
    if not isinstance(storage, Storage):
        raise ModelFileError(f"_load_from_bytes of a {type(storage).__name__}, not of a storage")
    return storage


def _dropped_attributes(unpickler, inst, state):
    """A dict's pickled attributes (a state dict's _metadata, an argparse.Namespace's fields) are not needed."""
    if not (state is None or type(state) is dict):
        raise ModelFileError(f"a dict with the state {shown(state)}")


class TorchUnpickler(AllowListUnpickler):
    """Numpy data, dicts and torch's tensors: what torch.save files and plainly pickled torch modules hold.
    ``storages`` (key -> Storage) collects torch.save's persistent ids; None refuses them (plain pickles)."""

    GLOBALS = {
        **AllowListUnpickler.GLOBALS,
        ("collections", "OrderedDict"): dict,
        ("argparse", "Namespace"): dict,  # rosinality's checkpoints keep their training options in one
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): torch.storage._load_from_bytes,
        **{("torch", name): StorageType(dtype) for name, dtype in _STORAGE_DTYPES.items()},
    }
    CALLS = {  # torch's own functions are never called: their checkers build records instead
        **AllowListUnpickler.CALLS,
        torch._utils._rebuild_tensor_v2: _tensor,
        torch._utils._rebuild_parameter: _parameter,
        torch.storage._load_from_bytes: _storage_from_bytes,
    }
    BUILDS = {**AllowListUnpickler.BUILDS, dict: _dropped_attributes}

    def __init__(self, stream, storages=None):
        super().__init__(stream)
        self.storages = storages

    def persistent_load(self, pid):
        if self.storages is None:
            return super().persistent_load(pid)
        if not (type(pid) is tuple and len(pid) in (5, 6) and same(pid[0], "storage")
                and isinstance(pid[1], StorageType) and type(pid[2]) is str and type(pid[3]) is str
                and type(pid[4]) is int and pid[4] >= 0 and (len(pid) == 5 or pid[5] is None)):
            raise ModelFileError(f"a persistent id {shown(pid)}; allowed: ('storage', type, key, location, size)")
        storage = self.storages.setdefault(pid[2], Storage(pid[1].dtype, pid[4]))
        if (storage.dtype, storage.numel) != (pid[1].dtype, pid[4]):
            raise ModelFileError(f"storage {pid[2]!r} declared twice, as different storages")
        return storage


def _read_at(f, offset, n):
    f.seek(offset)
    return f.read(n)


def read_legacy(f, size=None):
    """The object of a file of torch.save's older format, read from ``f`` (``size`` bytes, or to its end): five
    pickles (the magic number, the protocol version, system information, the object, the keys of its storages),
    then each storage's element count (8 bytes, little-endian) and bytes. The storages fetch their bytes from ``f``
    when loaded."""
    start = f.tell()
    stream = Stream(f, size)
    magic, version, info = (unpickle(TorchUnpickler(stream)) for _ in range(3))
    if not (same(magic, LEGACY_MAGIC) and same(version, LEGACY_PROTOCOL) and type(info) is dict
            and info.get("little_endian") is True):
        raise ModelFileError(f"not torch.save's format (magic {shown(magic)}, protocol {shown(version)}, "
                             f"system {shown(info)}; ganedit reads little-endian files of protocol {LEGACY_PROTOCOL})")
    storages = {}
    obj = unpickle(TorchUnpickler(stream, storages))
    keys = unpickle(TorchUnpickler(stream))
    if not (type(keys) is list and sorted(keys) == sorted(storages)):
        raise ModelFileError(f"storage keys {shown(keys)} that are not those of the object {shown(sorted(storages))}")
    for key in keys:
        storage = storages[key]
        count = int.from_bytes(stream.read(8), "little")
        if count != storage.numel:
            raise ModelFileError(f"storage {key!r} holds {count} elements, declared {storage.numel}")
        storage.fetch = partial(_read_at, f, start + stream.size - stream.left, storage.nbytes)
        stream.skip(storage.nbytes)
    if stream.left:
        raise ModelFileError(f"{stream.left} bytes after the last storage")
    return obj


def _member(archive, name, size):
    """The archive member ``name``, checked to be stored uncompressed (as torch writes them) within the archive's
    ``size`` bytes: reading it can't inflate, nor ask for more than the file holds."""
    if name not in archive.namelist():
        raise ModelFileError(f"the member {name} is missing")
    member = archive.getinfo(name)
    if member.compress_type != zipfile.ZIP_STORED or not member.file_size == member.compress_size <= size:
        raise ModelFileError(f"the member {name} is compressed ({member.compress_type}) or longer than the archive")
    return member


def read_zip(archive, size):
    """The object of a torch.save zip archive (a ZipFile of ``size`` bytes): ``<name>/data.pkl``, and its storages,
    members ``<name>/data/<key>`` each exactly as long as its storage."""
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise ModelFileError(f"a zip archive with {len(pickles)} data.pkl members, not one (not torch.save's?)")
    prefix = pickles[0].removesuffix("data.pkl")
    byteorder = prefix + "byteorder"  # (archives of before PyTorch 1.10 have none: little-endian)
    if byteorder in archive.namelist() and archive.read(_member(archive, byteorder, 8)) != b"little":
        raise ModelFileError("a big-endian archive; ganedit reads little-endian ones")
    storages = {}
    member = _member(archive, pickles[0], size)
    with archive.open(member) as f:
        obj = unpickle(TorchUnpickler(Stream(f, member.file_size), storages))
    for key, storage in storages.items():
        member = _member(archive, f"{prefix}data/{key}", size)
        if member.file_size != storage.nbytes:
            raise ModelFileError(f"the storage {member.filename} holds {member.file_size} bytes, not the "
                                 f"{storage.nbytes} of its {storage.numel} elements")
        storage.fetch = partial(archive.read, member)
    return obj


@contextlib.contextmanager
def open_torch_save(path):
    """The object of torch.save file ``path`` (a zip archive, or the older format), its tensors loadable inside the
    ``with`` block. Anything wrong with the file is a ModelFileError."""
    with open(path, "rb") as f:
        try:
            if f.read(4) == b"PK\x03\x04":
                f.seek(0)
                archive = zipfile.ZipFile(f)
                obj = read_zip(archive, os.fstat(f.fileno()).st_size)
            else:
                f.seek(0)
                archive, obj = contextlib.nullcontext(), read_legacy(f)
        except ModelFileError as err:
            raise ModelFileError(f"{path}: refused to load: {err}") from None
        except (zipfile.BadZipFile, OSError, ValueError) as err:
            raise ModelFileError(f"{path}: not a readable archive (truncated or corrupt?): {err}") from None
        with archive:
            yield obj


def read_torch_pickle(path, unpickler):
    """The object of a plain pickle holding torch tensors, read by ``unpickler`` (a TorchUnpickler class)."""
    with open(path, "rb") as f:
        try:
            return unpickle(unpickler(Stream(f)))
        except ModelFileError as err:
            raise ModelFileError(f"{path}: refused to load: {err}") from None
