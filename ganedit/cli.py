"""python -m ganedit: prepare models, convert weights, build, label and upgrade catalogs, make edits, evaluate."""

import argparse
import io
import json
import sys
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from .catalog import CATALOG_DIR, build_catalog, catalog_file, load_catalog, upgrade_catalog
from .editing import METHODS, edit, edit_settings, why_nothing_moved
from .evaluation import evaluate, mean_difference_maps, plot_curves, random_pairs, rows_to_csv
from .face_labels import auto_label_faces
from .files import safe_name, write_bytes_atomically
from .figures import edit_grid, edit_strip
from .heatmap import difference_heatmap
from .loading import MODELS, ModelFileError, WeightsUnavailableError, load_generator, save_generator
from .prepare import EXAMPLES_FILE, choose_examples, prepare_model, write_examples
from .request import parse_seed


class ProgressBar:
    """A tqdm bar fed by ganedit's progress(fraction, message) callbacks."""

    def __init__(self, description):
        self.bar = tqdm(total=1000, desc=description, unit="‰", leave=True)

    def __call__(self, fraction, message=""):
        self.bar.set_postfix_str(message)
        self.bar.update(int(fraction * 1000) - self.bar.n)

    def close(self):
        self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _png_bytes(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _model_and_catalog(args):
    G = load_generator(args.model)
    catalog = load_catalog(args.catalog or CATALOG_DIR / safe_name(G.name))
    catalog.check_fits(G)
    return G, catalog


def cmd_prepare(args):
    for name in args.models:
        G, catalog = prepare_model(name, out=args.out, device=args.device, k=args.k, n_images=args.n_images,
                                   force=args.force, bar=ProgressBar)
        if args.examples:
            rows = choose_examples(G, catalog, args.example_seeds, bar=ProgressBar, parts=args.example_parts)
            write_examples(args.examples_file, name, rows)
            chosen = "; ".join(f"{r['part']} (target {r['target']}, reference {r['reference']})" for r in rows)
            print(f"{name}: examples written to {args.examples_file}: {chosen}")


def cmd_convert(args):
    if not str(args.output).endswith(".safetensors"):
        raise ValueError(f"the output must be a .safetensors file, got {args.output}")
    G = load_generator(args.input)
    save_generator(G, args.output)
    print(f"wrote {args.output} ({G.kind}, {G.resolution}px, fingerprint {G.fingerprint})")


def cmd_catalog(args):
    G = load_generator(args.model)
    stem = Path(args.out) if args.out else CATALOG_DIR / safe_name(G.name)
    if catalog_file(stem).exists() and not args.force:
        raise ValueError(f"{catalog_file(stem)} exists (its part names would be lost); pass --force to replace it, or --out")
    bar = ProgressBar("catalog")
    catalog = build_catalog(G, layer=args.layer, k=args.k, n_images=args.n_images, seed=args.seed,
                            batch_size=args.batch_size, progress=bar)
    bar.close()
    if args.auto_faces:
        catalog.labels = auto_label_faces(G, catalog)
    catalog.save(stem)
    print(f"wrote catalog {catalog.path} (layer {catalog.layer}, k={catalog.k}); parts: {', '.join(catalog.parts)}")


def cmd_label(args):
    catalog = load_catalog(args.catalog)
    catalog.rename(args.clusters, args.name)
    catalog.save_labels()
    print(f"{catalog.path}.labels.json: {json.dumps(catalog.labels)}")


def cmd_upgrade_catalog(args):
    catalog = upgrade_catalog(args.catalog)
    print(f"converted {catalog.path} to {catalog_file(catalog.path)} and {catalog.path}.labels.json "
          f"(build {catalog.build}); parts: {', '.join(catalog.parts)}")


def cmd_edit(args):
    G, catalog = _model_and_catalog(args)
    if len(args.reference) > 1 or len(args.part) > 1:
        image = edit_grid(G, catalog, args.target, args.reference, args.part, args.method, args.epsilon, args.lam, args.psi)
    else:
        result = edit(G, catalog, args.target, args.reference[0], args.part[0], args.method, args.epsilon, args.lam, args.psi)
        image = edit_strip(result, f"({args.part[0]}, {args.method})")
        print(f"In-MSE {result.in_mse:.1f}  Out-MSE {result.out_mse:.1f}  inside share {100 * result.inside_share:.0f}%  "
              f"style channels moved {result.channels_moved}")
        if not result.channels_moved:
            epsilon, lam = edit_settings(catalog, args.part[0], args.method, args.epsilon, args.lam)
            print(f"nothing moved: {why_nothing_moved(args.method, epsilon, lam)}")
    write_bytes_atomically(args.out, _png_bytes(image))
    print(f"wrote {args.out}")


def cmd_evaluate(args):
    G, catalog = _model_and_catalog(args)
    parts = args.part or [p for p in catalog.labels]
    for part in parts:
        catalog.part_clusters(part)  # unknown parts fail before the long run
    bar = ProgressBar("evaluate")
    pairs = random_pairs(args.pairs, args.seed)
    rows = evaluate(G, catalog, parts, pairs, steps=args.steps, progress=bar)
    mean_maps = mean_difference_maps(G, catalog, parts, pairs)
    bar.close()
    out = Path(args.out)
    write_bytes_atomically(out / "curves.csv", rows_to_csv(rows).encode())
    write_bytes_atomically(out / "curves.png", plot_curves(rows, G.name))
    for part, mean_map in mean_maps.items():
        write_bytes_atomically(out / f"mean-difference-{safe_name(part)}.png", _png_bytes(difference_heatmap(mean_map)))
    print(f"wrote {out}/curves.csv, curves.png and {len(mean_maps)} mean difference maps")


def _seed(text):
    try:
        return parse_seed(text, "a seed")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _non_negative(text):
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m ganedit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    model_help = f"a registered model ({', '.join(MODELS)}) or a weights file (NVIDIA TF or ada-pytorch .pkl, rosinality .pt, ganedit .safetensors)"

    p = commands.add_parser("prepare", help="get, convert and catalog registered models, draw contact sheets to name "
                                            "parts from, then (--examples) choose the app's examples; resumable")
    p.add_argument("models", nargs="+", choices=list(MODELS), metavar="MODEL",
                   help=f"one or more of {', '.join(MODELS)}")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="default: cuda when available")
    p.add_argument("--k", type=int, default=16, help="number of clusters of a new catalog")
    p.add_argument("--n-images", type=int, default=200, help="images a new catalog is built from")
    p.add_argument("--out", default=CATALOG_DIR, help="folder of catalogs and contact sheets (default catalogs/)")
    p.add_argument("--force", action="store_true", help="rebuild catalogs and contact sheets (part names are lost)")
    p.add_argument("--examples", action="store_true", help="also choose each model's examples from its named parts")
    p.add_argument("--example-seeds", type=int, default=300, help="seeds the example pairs are chosen from")
    p.add_argument("--example-parts", nargs="+", metavar="PART",
                   help="the parts that get an example (default: three named parts, eyes, mouth and hair first)")
    p.add_argument("--examples-file", default=EXAMPLES_FILE,
                   help="examples file to update (default examples/examples.json)")
    p.set_defaults(run=cmd_prepare)

    p = commands.add_parser("convert", help="convert a model file to ganedit's .safetensors (the same images): NVIDIA's "
                                            "TensorFlow or stylegan2-ada-pytorch / stylegan3 pickles, rosinality's "
                                            "checkpoints, told apart by their content")
    p.add_argument("input", help="a registered model or a model file")
    p.add_argument("output", help="the .safetensors file to write")
    p.set_defaults(run=cmd_convert)

    p = commands.add_parser("catalog", help="build and save a semantic catalog for a model")
    p.add_argument("--model", required=True, help=model_help)
    p.add_argument("--layer", help="activation layer to cluster (default: the first 32x32 layer, or the middle one under 128 px)")
    p.add_argument("--k", type=int, default=16, help="number of clusters")
    p.add_argument("--n-images", type=int, default=200)
    p.add_argument("--seed", type=int, default=0, help="first seed of the images")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--auto-faces", action="store_true", help="name eyes/nose/mouth/background clusters by position (aligned faces)")
    p.add_argument("--out", help="path stem: writes <stem>.safetensors and <stem>.labels.json (default catalogs/<model>)")
    p.add_argument("--force", action="store_true", help="replace an existing catalog")
    p.set_defaults(run=cmd_catalog)

    p = commands.add_parser("label", help="name clusters of a catalog as a part")
    p.add_argument("--catalog", required=True, help="catalog name in catalogs/ or path")
    p.add_argument("--clusters", type=int, nargs="+", required=True)
    p.add_argument("--name", required=True)
    p.set_defaults(run=cmd_label)

    p = commands.add_parser("upgrade-catalog", help="convert a catalog of ganedit 0.1 (three files) to one file, keeping its part names")
    p.add_argument("catalog", help="catalog name in catalogs/ or path")
    p.set_defaults(run=cmd_upgrade_catalog)

    for name, run, text in (("edit", cmd_edit, "write target | reference | result | difference, or a grid (several references or parts)"),
                            ("evaluate", cmd_evaluate, "the paper's Fig. 7: mean difference maps and In/Out-MSE curves")):
        p = commands.add_parser(name, help=text)
        p.add_argument("--model", required=True, help=model_help)
        p.add_argument("--catalog", help="catalog name or path (default: the model's)")
        p.add_argument("--method", choices=METHODS, default="sequential")
        p.add_argument("--out", required=True, help="output PNG" if name == "edit" else "output folder")
        if name == "edit":
            p.add_argument("--target", type=_seed, required=True)
            p.add_argument("--reference", type=_seed, nargs="+", required=True)
            p.add_argument("--part", nargs="+", required=True)
            p.add_argument("--epsilon", type=_non_negative)
            p.add_argument("--lam", type=_non_negative)
            p.add_argument("--psi", type=float, help="truncation psi (default: the model's)")
        else:
            p.add_argument("--part", nargs="*", help="parts (default: every named part)")
            p.add_argument("--pairs", type=int, default=50)
            p.add_argument("--steps", type=int, default=6,
                           help="points per curve across the catalog's range (lambda's adds 3 below its first)")
            p.add_argument("--seed", type=int, default=0)
        p.set_defaults(run=run)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (ValueError, FileNotFoundError, ModelFileError, WeightsUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
