"""Which model format a file holds, told from its content (never its name), and the loader of each.

- ``PK\\x03\\x04``: a zip archive, torch.save's format since PyTorch 1.6: rosinality/stylegan2-pytorch checkpoints;
- an 8-byte little-endian length that fits the file, then ``{``: safetensors, ganedit's own files (a real
  pickle's first eight bytes, its protocol and first opcodes, read as a length, are beyond any file's size);
- ``\\x80`` and a protocol from 2 to 5: a pickle. A first pickle that is torch.save's magic number marks torch.save's
  older format (rosinality's checkpoints from before PyTorch 1.6). Otherwise the first global the pickle names
  that belongs to one format tells which: ``dnnlib.tflib.network.Network``, NVIDIA's TensorFlow files;
  ``torch_utils.persistence._reconstruct_persistent_obj``, stylegan2-ada-pytorch and stylegan3 files. Globals any
  format names (dicts, numpy) are passed over; another global is refused by name. A pickle that names no global
  within SCAN_OPCODES (garbage, a hostile file) goes to the TensorFlow reader, which says exactly what it refuses;
- a length that fits, without the ``{``: a damaged safetensors file, whose reader says what is wrong.
The scan runs pickletools' opcode reader on the unpickler's Stream: it reads no more than the file holds.
"""

import pickletools
import struct
import warnings
from pathlib import Path

from .ada import load_ada
from .errors import ModelFileError
from .native import load_native
from .official import load_official
from .rosinality import load_rosinality
from .torchpickle import LEGACY_MAGIC
from .unpickler import Stream

SCAN_OPCODES = 10_000  # ada pickles name their first network after ~100 opcodes, TensorFlow files at the third
_LEGACY = "torch.save's magic number"  # stands for the first pickle of torch.save's older format
_KINDS = {"dnnlib.tflib.network.Network": "tensorflow",
          "torch_utils.persistence._reconstruct_persistent_obj": "ada", _LEGACY: "torch-legacy"}
_COMMON = ("collections.", "builtins.", "__builtin__.", "_codecs.", "numpy.", "dnnlib.util.")
_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}
_MEMO_PUTS, _MEMO_GETS = {"MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"}, {"GET", "BINGET", "LONG_BINGET"}

FORMATS = {  # kind -> (what the file is, for messages; loader(path, device))
    "safetensors": ("a safetensors file (ganedit's format)", load_native),
    "tensorflow": ("an NVIDIA TensorFlow pickle (StyleGAN / StyleGAN2, dnnlib)", load_official),
    "ada": ("a stylegan2-ada-pytorch / stylegan3 pickle", load_ada),
    "torch-zip": ("a torch.save zip archive (rosinality/stylegan2-pytorch checkpoint)", load_rosinality),
    "torch-legacy": ("a torch.save file of before PyTorch 1.6 (rosinality/stylegan2-pytorch checkpoint)",
                     load_rosinality),
}


def _telling_global(f):
    """The first global the pickle in ``f`` names ("module.name") that is not one any format names, within its first
    SCAN_OPCODES opcodes; _LEGACY for torch.save's older format; None if there is none (or garbage, or a read beyond
    the file, ends the scan first)."""
    strings, memo, top = [], {}, None  # strings pushed (STACK_GLOBAL's operands), the memo, the string on top
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pickletools warns about the escapes of text opcodes in garbage
        try:
            for count, (op, arg, _) in enumerate(pickletools.genops(Stream(f))):
                if count == 1 and op.name == "LONG1" and arg == LEGACY_MAGIC:
                    return _LEGACY
                if count >= SCAN_OPCODES or op.name == "STOP":
                    return None
                if op.name in _MEMO_PUTS:
                    memo[len(memo) if op.name == "MEMOIZE" else arg] = top
                    continue
                top = arg if op.name in _STRINGS else memo.get(arg) if op.name in _MEMO_GETS else None
                if isinstance(top, str):
                    strings.append(top)
                if op.name == "GLOBAL":
                    name = arg.replace(" ", ".")
                elif op.name == "STACK_GLOBAL":
                    name = ".".join(strings[-2:])
                else:
                    continue
                if not name.startswith(_COMMON):
                    return name
        except (ValueError, ModelFileError):
            return None
    return None


def _pickle_kind(path, f):
    name = _telling_global(f)
    if name is None or name in _KINDS:
        return _KINDS.get(name, "tensorflow")
    raise ModelFileError(
        f"{path}: a pickle naming {name}, which belongs to no model format ganedit reads: refused to load "
        f"(NVIDIA's TensorFlow files name {list(_KINDS)[0]}, stylegan2-ada-pytorch and stylegan3 files "
        f"{list(_KINDS)[1]})")


def detect_format(path):
    """The kind of model file ``path`` holds (a key of FORMATS), from its content; ModelFileError for others."""
    with open(path, "rb") as f:
        head = f.read(16)
        size = f.seek(0, 2)
        f.seek(0)
        header = len(head) >= 8 and 0 < struct.unpack("<Q", head[:8])[0] <= size - 8  # a safetensors header fits
        if head[:4] == b"PK\x03\x04":
            return "torch-zip"
        if header and head[8:9] == b"{":
            return "safetensors"
        if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
            return _pickle_kind(path, f)
        if header:
            return "safetensors"  # whose header is not a JSON object: its reader says what is wrong
    start = repr(head[:8]) if head else "nothing (the file is empty)"
    raise ModelFileError(
        f"{path}: unknown file type: it starts with {start}; ganedit reads pickles (NVIDIA's TensorFlow files, "
        "stylegan2-ada-pytorch and stylegan3 files), torch.save checkpoints (rosinality/stylegan2-pytorch) and its "
        "own safetensors files")


def load_file(path, device="cpu"):
    """The generator in model file ``path``, whatever its format; a ModelFileError names the format found."""
    path = Path(path)
    what, load = FORMATS[detect_format(path)]
    try:
        return load(path, device)
    except ModelFileError as err:
        raise ModelFileError(f"{path}: {what}: {str(err).removeprefix(f'{path}: ')}") from None
