"""Generator output -> pictures people see."""

import torch


def to_uint8(images):
    """[N, 3, H, W] in NVIDIA's range (about [-1, 1]) -> [N, H, W, 3] uint8, as NVIDIA's convert_images_to_uint8 does."""
    return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def crop_rows(array, crop, height):
    """The rows of ``array`` (axis 0 is image rows at ``height`` rows) inside a model's display crop."""
    if crop is None:
        return array
    scale = array.shape[0] / height
    return array[int(crop[0] * scale): int(crop[1] * scale)]
