"""The bundled models: procedural renderers with ground-truth part masks, and the generators trained on them.

``RENDERERS`` maps each bundled model to the renderer it learned: its training, catalog and evaluation read the
parts and the ground truth from there.
"""

from . import renderer, renderer_v2

RENDERERS = {"cartoon-faces": renderer, "cartoon-faces-128": renderer_v2}
