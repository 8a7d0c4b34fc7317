"""From a PyTorch model file's named tensors to ganedit's generator: every name, shape and dtype checked against
the architecture (a skeleton, see limits.py) before any tensor is read, then the generator built and loaded."""

import zipfile

import torch

from ..networks import build_generator
from .errors import ModelFileError, shown


def _listed(names):
    """Up to 20 tensor names from a file, each whole unless it is very long."""
    names = [repr(name) if len(name) <= 120 else shown(name) for name in names]
    return f"[{', '.join(names[:20])}{' ...' if len(names) > 20 else ''}]"


def flipped(weight):
    """A convolution weight turned by 180 degrees: correlation for convolution (or back)."""
    return weight.flip(2, 3)


def minus_one(bias):
    """A modulation bias initialised to 1 (PyTorch ports) as NVIDIA's TensorFlow one, to which 1 is added."""
    return bias - 1


def state_dict_from(path, shapes, table, tensors, source):
    """Our state dict for skeleton ``shapes`` from ``tensors`` (the file's {name: TensorRecord}).

    ``table`` maps each of our keys to (the file's tensor name, the file's shape for it as a function of ours, or
    None for the same, an adjustment of the tensor or None). ``source`` says where the architecture came from.
    """
    expected = shapes.state_dict()
    wanted = {name for name, _, _ in table.values()}
    missing, unexpected = sorted(wanted - set(tensors)), sorted(set(tensors) - wanted)
    if missing or unexpected:
        raise ModelFileError(f"{path}: tensors do not match the {shapes.resolution}px StyleGAN2 generator ({source}): "
                             f"missing {_listed(missing)}, unexpected {_listed(unexpected)}")
    state = {}
    for key, (name, file_shape, adjust) in table.items():
        record, ours = tensors[name], tuple(expected[key].shape)
        needed = tuple(file_shape(ours)) if file_shape else ours
        if record.shape != needed or not record.dtype.is_floating_point:
            raise ModelFileError(f"{path}: tensor {name} is {record.dtype} {list(record.shape)}, the architecture "
                                 f"({source}) needs a float tensor {list(needed)}")
        try:
            value = record.load().to(torch.float32).reshape(ours)
        except (OSError, zipfile.BadZipFile, RuntimeError, ValueError) as err:
            raise ModelFileError(f"{path}: tensor {name} can't be read (truncated or corrupt?): {err}") from None
        state[key] = adjust(value) if adjust else value
    return state


def built(shapes, state, device):
    """The generator of skeleton ``shapes`` holding ``state`` (checked to fit), on ``device``, for inference."""
    G = build_generator(shapes.kind, shapes.config)
    with torch.no_grad():
        G.load_state_dict(state)
    return G.to(device).eval().requires_grad_(False)
