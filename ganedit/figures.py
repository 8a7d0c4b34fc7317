"""Pictures made of pictures: the edit strip, the paper's Fig. 3 grid and the cluster-map overlay."""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .editing import edit_settings, grid_edits
from .imaging import crop_rows
from .heatmap import difference_heatmap, heatmap

DISPLAY_SIZE = 256


def enlarge(image, min_size=DISPLAY_SIZE):
    """Scale a small picture up by a whole factor (nearest), so a 64 px face is not a smudge on screen."""
    factor = max(1, -(-min_size // max(image.shape[:2])))
    return image.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else image


def cluster_palette(k):
    """k clearly different colours (evenly spaced hues, alternating lightness)."""
    hues = np.arange(k) / max(k, 1)
    image = Image.fromarray((np.stack([hues * 255, np.full(k, 200), 255 - (np.arange(k) % 2) * 70], -1)[None]).astype(np.uint8), "HSV")
    return np.asarray(image.convert("RGB"))[0]


def part_palette(catalog):
    """One colour per part of the catalog (each named part, each unnamed cluster), {part: (r, g, b)}: a catalog of
    160 clusters in ten named parts shows ten colours, not 160."""
    palette = cluster_palette(len(catalog.parts))
    return {part: tuple(int(v) for v in palette[i]) for i, part in enumerate(catalog.parts)}


def cluster_colours(catalog):
    """[k, 3] uint8: every cluster in its part's colour (see part_palette)."""
    table = np.zeros((catalog.k, 3), np.uint8)
    for part, colour in part_palette(catalog).items():
        table[catalog.part_clusters(part)] = colour
    return table


def cluster_overlay(image, cluster_map, alpha=0.55, selected=(), colours=None):
    """The catalog's cluster map, coloured per cluster (``colours`` [k, 3]: by default each cluster its own),
    blended over the picture it was predicted for; the clusters in ``selected`` are outlined (white, with a black
    edge, to show on any colour)."""
    labels = np.asarray(cluster_map)
    factor_y, factor_x = image.shape[0] / labels.shape[0], image.shape[1] / labels.shape[1]
    rows = (np.arange(image.shape[0]) / factor_y).astype(int)
    cols = (np.arange(image.shape[1]) / factor_x).astype(int)
    per_pixel = labels[rows][:, cols]
    colours = (cluster_palette(int(labels.max()) + 1) if colours is None else np.asarray(colours))[per_pixel]
    overlay = (image * (1 - alpha) + colours * alpha).round().astype(np.uint8)
    inside = np.isin(per_pixel, list(selected))
    for width, colour in ((2, 0), (1, 255)):
        overlay[inside & ~_shrunk(inside, width)] = colour
    return overlay


def _shrunk(mask, width):
    """``mask`` minus a border of ``width`` pixels (a square erosion)."""
    padded = np.pad(mask, width, constant_values=False)
    out = np.ones_like(mask)
    for dy in range(2 * width + 1):
        for dx in range(2 * width + 1):
            out &= padded[dy:dy + mask.shape[0], dx:dx + mask.shape[1]]
    return out


def seed_overlay(G, prepared, selected=(), colours=None):
    """A prepared seed's picture with its cluster map over it (``selected`` clusters outlined; ``colours`` as for
    cluster_overlay), cropped for display like the edit panels."""
    overlay = cluster_overlay(prepared.image, prepared.cluster_map.cpu().numpy(), selected=selected, colours=colours)
    return crop_rows(overlay, G.crop, G.resolution)


def cluster_at(G, prepared, x, y, shown_size):
    """The catalog cluster under pixel (x, y) of a prepared seed's picture as shown: cropped like the panels,
    then scaled to ``shown_size`` (width, height). ValueError for a point outside the picture."""
    width, height = shown_size
    if not (0 <= x < width and 0 <= y < height):
        raise ValueError(f"the point ({x}, {y}) is outside the picture ({width}x{height})")
    top, bottom = G.crop or (0, G.resolution)
    canvas_y, canvas_x = top + (y + 0.5) * (bottom - top) / height, (x + 0.5) * G.resolution / width
    rows, cols = prepared.cluster_map.shape
    return int(prepared.cluster_map[int(canvas_y * rows / G.resolution), int(canvas_x * cols / G.resolution)])


def difference_panel(result, size=DISPLAY_SIZE):
    """The difference heat-map (with its legend, scaled to this edit) at display size."""
    factor = max(1, -(-size // max(result.difference.shape)))
    return difference_heatmap(np.kron(result.difference, np.ones((factor, factor))))


def difference_picture(result, vmax):
    """The difference heat-map alone, at the size of the other panels, on a scale that ends at ``vmax``."""
    return enlarge(heatmap(result.difference, vmax))


def labelled(image, text):
    font = ImageFont.load_default()
    canvas = Image.new("RGB", (image.shape[1], image.shape[0] + 16), "white")
    canvas.paste(Image.fromarray(image), (0, 16))
    ImageDraw.Draw(canvas).text((4, 2), text, fill="black", font=font)
    return np.asarray(canvas)


def side_by_side(images, gap=4):
    height = max(i.shape[0] for i in images)
    padded = [np.pad(i, ((0, height - i.shape[0]), (0, gap), (0, 0)), constant_values=255) for i in images]
    return np.concatenate(padded, axis=1)


def stacked(rows, gap=4):
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, gap), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate(padded, axis=0)


def edit_strip(result, caption=""):
    """target | reference | result | difference, labelled, as one picture."""
    panels = [enlarge(result.target), enlarge(result.reference), enlarge(result.result), difference_panel(result)]
    names = ["target", "reference", f"result {caption}".strip(),
             f"difference (In-MSE {result.in_mse:.0f}, Out-MSE {result.out_mse:.0f})"]
    return side_by_side([labelled(p, n) for p, n in zip(panels, names)])


def grid_figure(target_seed, reference_seeds, parts, rows, settings=None):
    """The paper's Fig. 3 as one picture: target and references, then one row of edited targets per part
    (``rows`` as editing.grid_edits returns them), each row's first cell naming its part and, when given, its
    setting (e.g. "eps 12.7")."""
    first = rows[0]
    top = [labelled(enlarge(first[0].target), f"target {target_seed}")]
    top += [labelled(enlarge(r.reference), f"reference {s}") for r, s in zip(first, reference_seeds)]
    lines = [side_by_side(top)]
    names = [f"{part}, {setting}" for part, setting in zip(parts, settings)] if settings else parts
    for name, part, results in zip(names, parts, rows):
        lines.append(side_by_side([labelled(np.full_like(enlarge(first[0].target), 255), name)]
                                  + [labelled(enlarge(r.result), f"{part} from {s}")
                                     for r, s in zip(results, reference_seeds)]))
    return stacked(lines)


def setting_caption(catalog, part, method, epsilon=None, lam=None):
    """What an edit's strength was: "eps 12.7" for the sequential method, "lambda 1.7" for the others (spelled
    out: the figures' font has no Greek letters)."""
    epsilon, lam = edit_settings(catalog, part, method, epsilon, lam)
    return f"eps {epsilon:g}" if method == "sequential" else f"lambda {lam:g}"


def edit_grid(G, catalog, target_seed, reference_seeds, parts, method="sequential", epsilon=None, lam=None,
              truncation_psi=None, progress=None):
    """The paper's Fig. 3 for one target, a few references and parts: grid_edits, drawn by grid_figure with each
    row's setting (without ``epsilon``, each part takes its own default)."""
    rows = grid_edits(G, catalog, target_seed, reference_seeds, parts, method, epsilon, lam, truncation_psi, progress)
    settings = [setting_caption(catalog, part, method, epsilon, lam) for part in parts]
    return grid_figure(target_seed, reference_seeds, parts, rows, settings)
