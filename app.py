"""ganedit web app: local semantic editing of GAN images ("Editing in Style", Collins et al., CVPR 2020).

The UI and nothing else: every picture and number comes from the public ``ganedit`` API. Nothing per user is
kept on the server; each event names its model, and the shared EditService only caches models and seeds.
Run ``python app.py`` (port from GRADIO_SERVER_PORT, default 7860).
"""

import spaces  # noqa: I001  first: on ZeroGPU Spaces it has to be imported before torch

import atexit
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import urllib.parse
from pathlib import Path

import gradio as gr

import ganedit

# Examples are cached lazily, per server process, so a changed model, catalog or examples.json never shows
# stale pictures. GRADIO_EXAMPLES_CACHE, if set, wins.
if "GRADIO_EXAMPLES_CACHE" not in os.environ:
    os.environ["GRADIO_EXAMPLES_CACHE"] = tempfile.mkdtemp(prefix="ganedit-examples-")
    atexit.register(shutil.rmtree, os.environ["GRADIO_EXAMPLES_CACHE"], ignore_errors=True)

MAX_SEED = ganedit.MAX_SEED
BUNDLED = next(name for name, info in ganedit.MODELS.items() if info.bundled_file)
OFFICIAL_ORDER = ("stylegan-ffhq", "stylegan-bedrooms", "stylegan2-cats", "stylegan2-cars")
MODEL_ORDER = [name for name in dict.fromkeys([BUNDLED, *OFFICIAL_ORDER, *ganedit.MODELS]) if name in ganedit.MODELS]
METHODS = tuple(ganedit.METHODS)
PSI_RANGE = (0.0, 2.0)  # what ganedit accepts
THRESHOLD = 0.1  # rho / (1 + rho), the paper's value
GLOBAL_LAM = {"default": 1.0, "min": 0.0, "max": 1.0}
PREFERRED_PARTS = ("eyes", "mouth", "hair", "nose", "face")
MAX_GRID_REFERENCES = 4
EXAMPLES_FILE = Path(__file__).resolve().parent / "examples" / "examples.json"
EXAMPLE_KEYS = ("model", "target", "reference", "part", "method", "epsilon")

service = ganedit.EditService()


# ---- inputs: checked here, so every message says what was wrong and what is allowed ---------------------------
def parse_seed(value, what):
    """An int seed from a number or a string; ValueError naming ``what`` otherwise."""
    seed = None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            pass
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SEED:
        seed = value
    if seed is None:
        raise ValueError(f"{what} must be a whole number from 0 to {MAX_SEED} (2**32-1); got {value!r}")
    return seed


def parse_number(value, what, low, high, allowed=None, below_high=False):
    """A float within [low, high] (or [low, high) if ``below_high``) from a number or a string; ValueError naming
    ``what`` and ``allowed`` otherwise."""
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number) \
            or not low <= number <= high or (below_high and number == high):
        raise ValueError(f"{what} must be {allowed or f'a number from {low:g} to {high:g}'}; got {value!r}")
    return float(number)


def check_model(name):
    if name not in ganedit.MODELS:
        raise ValueError(f"unknown model {name!r}; the models are: {', '.join(MODEL_ORDER)}")
    return name


def check_part(catalog, part, model):
    if part not in catalog.parts:
        raise ValueError(f"model {model} has no part {part!r}; its parts are: {', '.join(catalog.parts)}")
    return part


def check_method(method):
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    return method


def clean(err):
    """An exception's message without its final full stop, to end a sentence of ours."""
    return str(err).rstrip(". ")


def lam_range(catalog, method):
    return GLOBAL_LAM if method == "global" else catalog.lam


def default_part(catalog):
    return next((p for p in PREFERRED_PARTS if p in catalog.parts), catalog.parts[0])


def grid_default_parts(catalog):
    named = [p for p in PREFERRED_PARTS if p in catalog.labels] or list(catalog.labels) or catalog.parts
    return named[:3]


def load_model(name, progress=None):
    """(generator, catalog); ValueError with the registry's explanation when the model can't be used here."""
    check_model(name)
    report = (lambda fraction, message=None: progress(fraction, desc=message)) if progress is not None else None
    try:
        return service.model(name, progress=report)
    except ganedit.WeightsUnavailableError as err:
        raise ValueError(f"model {name} is not available here: {err}") from None
    except (ganedit.ModelFileError, OSError) as err:
        raise ValueError(f"model {name} could not be loaded: {err}") from None


# ---- examples (data in examples/examples.json) ----------------------------------------------------------------
def load_examples(path=EXAMPLES_FILE):
    rows = json.loads(Path(path).read_text())
    for i, row in enumerate(rows):
        missing = [k for k in EXAMPLE_KEYS if k not in row]
        if missing or row["model"] not in ganedit.MODELS or row["method"] not in METHODS:
            raise ValueError(f"{path}: example {i} needs {', '.join(EXAMPLE_KEYS)} with a registered model "
                             f"and a method from {', '.join(METHODS)}; got {row}")
    return rows


EXAMPLES = load_examples()


def example_for(model):
    return next((row for row in EXAMPLES if row["model"] == model), None)


# ---- what the page shows ---------------------------------------------------------------------------------------
AVAILABILITY_WORDS = {"ready": "ready", "download": "downloads on first use", "unavailable": "unavailable here"}


def model_choices():
    choices = []
    for name in MODEL_ORDER:
        state, reason = ganedit.availability(name)
        label = f"{ganedit.MODELS[name].title} · {AVAILABILITY_WORDS[state]}"
        if state == "unavailable":
            label += f" ({reason})"
        choices.append((label, name))
    return choices


def model_note(name):
    info = ganedit.MODELS[name]
    state, reason = ganedit.availability(name)
    return f"**{info.title}**: {AVAILABILITY_WORDS[state]} ({reason}). License: {info.license}"


def metrics_text(result, part):
    return (
        f"**In-MSE** {result.in_mse:.1f} · **Out-MSE** {result.out_mse:.1f} "
        f"(mean squared CIELAB ΔE² inside / outside the part *{part}*) · "
        f"**{result.inside_share:.0%} of the change is inside the part**, "
        f"which covers {result.roi.mean():.0%} of the picture."
    )


def share_query(model, target, reference, part, method, epsilon, lam, psi, threshold):
    values = dict(model=model, target=target, reference=reference, part=part, method=method,
                  epsilon=f"{epsilon:g}", lam=f"{lam:g}", psi=f"{psi:g}", threshold=f"{threshold:g}")
    return urllib.parse.urlencode(values, quote_via=urllib.parse.quote)


# The share link is the page's own address plus the query: computed in the browser, so it is right behind
# any proxy (Hugging Face Spaces) without the server guessing its public URL.
SHARE_LINK_JS = "(q) => q ? window.location.origin + window.location.pathname + '?' + q : ''"
RANDOM_SEED_JS = f"() => Math.floor(Math.random() * {MAX_SEED + 1})"


@spaces.GPU
def compute_edit(model, target, reference, part, method, epsilon, lam, psi, threshold, overlay=False):
    """The edit (a ganedit.EditResult) and, if asked, the catalog's cluster maps over target and reference."""
    result = service.edit(model, target, reference, part, method, epsilon, lam, psi, threshold)
    overlays = None
    if overlay:
        G, _ = service.model(model)
        overlays = [ganedit.seed_overlay(G, service.prepared(model, seed, psi)) for seed in (target, reference)]
    return result, overlays


def panels(result, overlays=None):
    target, reference = overlays or (result.target, result.reference)
    return (ganedit.enlarge(target), ganedit.enlarge(reference), ganedit.enlarge(result.result),
            ganedit.difference_panel(result))


def checked_inputs(model, target, reference, part, method, epsilon, lam, psi, threshold, progress=None):
    """All parameters of an edit, checked, with defaults filled in; ValueError on the first bad one."""
    check_model(model)
    target = parse_seed(target, "target seed")
    reference = parse_seed(reference, "reference seed")
    method = check_method(method)
    _, catalog = load_model(model, progress)
    check_part(catalog, part, model)
    eps = catalog.epsilon
    epsilon = eps["default"] if epsilon is None else parse_number(
        epsilon, "ε (epsilon)", 0.0, math.inf,
        f"a finite number ≥ 0 (this model's catalog suggests {eps['min']:g} to {eps['max']:g})")
    lams = lam_range(catalog, method)
    lam = lams["default"] if lam is None else parse_number(
        lam, "λ (lambda)", 0.0, math.inf, f"a finite number ≥ 0 (suggested {lams['min']:g} to {lams['max']:g})")
    psi = ganedit.MODELS[model].truncation_psi if psi is None else parse_number(psi, "truncation ψ", *PSI_RANGE)
    threshold = THRESHOLD if threshold is None else parse_number(
        threshold, "threshold ρ/(1+ρ)", 0.0, 1.0, "a number from 0 to just under 1", below_high=True)
    return model, target, reference, part, method, epsilon, lam, psi, threshold


# ---- handlers ----------------------------------------------------------------------------------------------
def api_edit(model, target_seed, reference_seed, part, method, epsilon, progress=gr.Progress()):
    """One edit by name: model (e.g. "cartoon-faces"), two seeds (0 to 2**32-1), a part of the model's catalog
    (e.g. "eyes"), a method (sequential, simultaneous, global) and ε for sequential (empty: the catalog's
    default; the other methods use the catalog's λ). Returns target, reference and result at the model's size,
    and the difference heat-map (enlarged, with its legend)."""
    try:
        args = checked_inputs(model, target_seed, reference_seed, part, method, epsilon, None, None, None, progress)
        result, _ = compute_edit(*args)
    except ValueError as err:
        raise gr.Error(f"/edit: {clean(err)}.") from None
    return result.target, result.reference, result.result, ganedit.difference_panel(result)


def ui_edit(model, target, reference, part, method, epsilon, lam, psi, threshold, overlay, progress=gr.Progress()):
    """The Edit tab's pictures, metrics and share query for the controls as they are (and no note)."""
    try:
        args = checked_inputs(model, target, reference, part, method, epsilon, lam, psi, threshold, progress)
        return picture_outputs(args, overlay)
    except ValueError as err:
        raise gr.Error(f"{clean(err)}.") from None


@spaces.GPU(duration=120)
def compute_grid(model, target, references, parts, method, epsilon, lam, psi, progress=None):
    G, catalog = service.model(model)
    return ganedit.edit_grid(G, catalog, target, references, parts, method, epsilon, lam, psi, progress=progress)


def ui_grid(model, target, references, parts, method, epsilon, lam, psi, progress=gr.Progress()):
    """The paper's Fig. 3 for one target, up to four references (comma-separated seeds) and the chosen parts."""
    try:
        seeds = [s for s in str(references or "").replace(",", " ").split() if s]
        if not 1 <= len(seeds) <= MAX_GRID_REFERENCES:
            raise ValueError(f"give 1 to {MAX_GRID_REFERENCES} reference seeds separated by commas; got {references!r}")
        seeds = [parse_seed(s, "each reference seed") for s in seeds]
        parts = list(parts or [])
        if not parts:
            raise ValueError("choose at least one part for the grid")
        model, target, _, _, method, epsilon, lam, psi, _ = checked_inputs(
            model, target, seeds[0], parts[0], method, epsilon, lam, psi, None, progress)
        _, catalog = load_model(model)
        for part in parts:
            check_part(catalog, part, model)
        return compute_grid(model, target, seeds, parts, method, epsilon, None if method == "sequential" else lam,
                            psi, lambda fraction, message=None: progress(fraction, desc=message))
    except ValueError as err:
        raise gr.Error(f"{clean(err)}.") from None


def resolve(model, target, reference, part, method, epsilon=None, lam=None, psi=None, threshold=None,
            explain=True, progress=None):
    """Checked parameters for a requested state (share link, example, model switch), and the notes to show.

    Whatever is missing or invalid falls back to the model's default, with a note when ``explain``. A model
    that can't be used here always gets a note, and the bundled model is used instead.
    Returns (args for compute_edit, catalog, notes, fell_back_to_bundled).
    """
    notes = []

    def fallback(value, default, err):
        if explain and value is not None:
            notes.append(f"{err}; using {default!r}.")
        return default

    fell_back = False
    model = BUNDLED if model is None else model
    try:
        _, catalog = load_model(model, progress)
    except ValueError as err:
        notes.append(f"{clean(err)}. Showing {BUNDLED} instead.")
        model, fell_back = BUNDLED, True
        _, catalog = load_model(model, progress)
    example = example_for(model) or {}
    if method not in METHODS:
        method = fallback(method, "sequential", f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if part not in catalog.parts:
        default = example.get("part") if example.get("part") in catalog.parts else default_part(catalog)
        part = fallback(part, default, f"{model} has no part {part!r} (its parts: {', '.join(catalog.parts)})")
    seeds = []
    for what, value, default in (("target seed", target, example.get("target", 0)),
                                 ("reference seed", reference, example.get("reference", 1))):
        try:
            seeds.append(parse_seed(value, what))
        except ValueError as err:
            seeds.append(fallback(value, default, str(err)))
    eps, lams = catalog.epsilon, lam_range(catalog, method)
    ranged = []
    for what, value, low, high, default in (
        ("ε (epsilon)", epsilon, eps["min"], eps["max"], eps["default"]),
        ("λ (lambda)", lam, lams["min"], lams["max"], lams["default"]),
        ("truncation ψ", psi, *PSI_RANGE, ganedit.MODELS[model].truncation_psi),
        ("threshold ρ/(1+ρ)", threshold, 0.0, 0.99, THRESHOLD),
    ):
        try:
            ranged.append(default if value is None else parse_number(value, what, low, high))
        except ValueError as err:
            ranged.append(fallback(value, default, str(err)))
    return (model, *seeds, part, method, *ranged), catalog, notes, fell_back


def note_text(notes):
    return "\n\n".join(f"⚠️ {n}" for n in notes)


def picture_outputs(args, overlay=False, notes=()):
    """The pictures, metrics, share query and note for checked args: plain values, so examples can cache them."""
    result, overlays = compute_edit(*args, overlay=overlay)
    return [*panels(result, overlays), metrics_text(result, args[3]), share_query(*args), note_text(notes)]


def control_updates(args, catalog, overlay=False):
    """Every control set to checked args, with the ranges and choices of the model's catalog."""
    model, target, reference, part, method, epsilon, lam, psi, threshold = args
    eps, lams = catalog.epsilon, lam_range(catalog, method)
    sequential = method == "sequential"
    return {
        model_dd: gr.update(value=model, choices=model_choices()),
        model_md: model_note(model),
        target_num: target,
        reference_num: reference,
        part_dd: gr.update(choices=catalog.parts, value=part),
        method_radio: method,
        epsilon_sl: gr.update(minimum=eps["min"], maximum=eps["max"], value=epsilon, visible=sequential),
        lam_sl: gr.update(minimum=lams["min"], maximum=lams["max"], value=lam, visible=not sequential),
        psi_sl: psi,
        threshold_sl: threshold,
        overlay_cb: overlay,
        grid_parts: gr.update(choices=catalog.parts, value=grid_default_parts(catalog)),
    }


def full_state(*requested, overlay=False, explain=True, progress=None, extra_notes=()):
    args, catalog, notes, fell_back = resolve(*requested, explain=explain, progress=progress)
    if fell_back:
        gr.Warning(notes[0])
    return {**control_updates(args, catalog, overlay),
            **dict(zip(PICTURE_OUTPUTS, picture_outputs(args, overlay, [*notes, *extra_notes])))}


QUERY_KEYS = ("model", "target", "reference", "part", "method", "epsilon", "lam", "psi", "threshold")


def prepare_model(model, progress=gr.Progress()):
    """Load (download, build the catalog of) a model on its first use; a failure is explained by the next step."""
    try:
        load_model(model, progress)
    except ValueError:
        pass
    return model_note(model) if model in ganedit.MODELS else gr.skip(), *[gr.skip()] * 4


def prepare_linked_model(request: gr.Request, progress=gr.Progress()):
    return prepare_model(dict(request.query_params).get("model", BUNDLED) if request is not None else BUNDLED,
                         progress)


def restore(request: gr.Request, progress=gr.Progress()):
    """Page load: the edit named by the URL's query (a share link), else the bundled model's example."""
    query = dict(request.query_params) if request is not None else {}
    if not any(k in query for k in QUERY_KEYS):
        example = example_for(BUNDLED) or {"model": BUNDLED}
        return full_state(*(example.get(k) for k in EXAMPLE_KEYS), explain=False, progress=progress)
    missing = [k for k in QUERY_KEYS[:6] if k not in query]
    extra = [f"the link did not say {', '.join(missing)}; using the defaults."] if missing else []
    return full_state(*(query.get(k) for k in QUERY_KEYS), progress=progress, extra_notes=extra)


def switch_model(model, target, reference, part, method, threshold, overlay, progress=gr.Progress()):
    """The model dropdown: its catalog's parts and ranges, and the edit, keeping seeds, part and method."""
    return full_state(model, target, reference, part, method, None, None, None, threshold, overlay=overlay,
                      explain=False, progress=progress)


def run_example(model, target, reference, part, method, epsilon, progress=gr.Progress()):
    """An example's pictures (cached lazily, so plain values only). An example of a model that is unavailable here
    shows the bundled model with a note; a model whose download fails raises, so that failure is not cached."""
    if ganedit.availability(model)[0] != "unavailable":
        try:
            load_model(model, progress)
        except ValueError as err:
            raise gr.Error(f"{clean(err)}.") from None
    args, _, notes, _ = resolve(model, target, reference, part, method, epsilon, progress=progress)
    return picture_outputs(args, notes=notes)


def example_controls(model, target, reference, part, method, epsilon):
    """After an example loads: the controls follow its model's catalog (ranges, parts); a model that can't be
    used here falls back to the bundled one, pictures included."""
    args, catalog, notes, fell_back = resolve(model, target, reference, part, method, epsilon, explain=False)
    updates = control_updates(args, catalog)
    if fell_back:
        updates.update(zip(PICTURE_OUTPUTS, picture_outputs(args, notes=notes)))
    return updates


def switch_method(model, method):
    """λ's range follows the method (catalog λ for simultaneous, 0..1 for global); ε is for sequential only."""
    try:
        _, catalog = load_model(model)
    except ValueError as err:
        raise gr.Error(f"{clean(err)}.") from None
    lams = lam_range(catalog, method)
    sequential = method == "sequential"
    return (gr.update(visible=sequential),
            gr.update(minimum=lams["min"], maximum=lams["max"], value=lams["default"], visible=not sequential))


# ---- the page ----------------------------------------------------------------------------------------------
_, _CATALOG = load_model(BUNDLED)
_EXAMPLE = example_for(BUNDLED) or {}
_GRID_REFERENCES = ", ".join(str(s) for s in dict.fromkeys([_EXAMPLE.get("reference", 1), 11, 21, 42]))
_PART = _EXAMPLE.get("part") if _EXAMPLE.get("part") in _CATALOG.parts else default_part(_CATALOG)

DESCRIPTION = """# ganedit: local semantic editing of GAN images
Pick a **target** and a **reference** picture (each a seed of the generator), a **part** such as the eyes, and watch
that part's look move from the reference to the target while the rest stays put: *Editing in Style*
(Collins, Bala, Price, Süsstrunk, CVPR 2020). The catalog of parts comes from k-means on one layer's
activations; **ε** bounds the effect outside the part (sequential), **λ** is the strength (simultaneous, global).
"""

CSS = """
#panels .image-container img { image-rendering: pixelated; }
"""

with gr.Blocks(title="ganedit: Editing in Style", delete_cache=(1800, 3600)) as demo:
    gr.Markdown(DESCRIPTION)
    note_md = gr.Markdown(elem_id="note")
    with gr.Row(equal_height=True):
        model_dd = gr.Dropdown(model_choices(), value=BUNDLED, label="Model", elem_id="model", scale=3)
        model_md = gr.Markdown(model_note(BUNDLED), elem_id="model-note")
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            with gr.Row(equal_height=True):
                target_num = gr.Number(_EXAMPLE.get("target", 0), label="Target seed", precision=0, minimum=0,
                                       maximum=MAX_SEED, elem_id="target", scale=4)
                target_dice = gr.Button("🎲", scale=0, min_width=44, elem_id="target-dice")
            with gr.Row(equal_height=True):
                reference_num = gr.Number(_EXAMPLE.get("reference", 1), label="Reference seed", precision=0,
                                          minimum=0, maximum=MAX_SEED, elem_id="reference", scale=4)
                reference_dice = gr.Button("🎲", scale=0, min_width=44, elem_id="reference-dice")
            part_dd = gr.Dropdown(_CATALOG.parts, value=_PART, label="Part", allow_custom_value=True,
                                  elem_id="part")
            method_radio = gr.Radio(list(METHODS), value="sequential", label="Method", elem_id="method")
            epsilon_sl = gr.Slider(_CATALOG.epsilon["min"], _CATALOG.epsilon["max"],
                                   value=_EXAMPLE.get("epsilon", _CATALOG.epsilon["default"]), step=0.01,
                                   label="ε: budget of change outside the part (sequential)", elem_id="epsilon")
            lam_sl = gr.Slider(_CATALOG.lam["min"], _CATALOG.lam["max"], value=_CATALOG.lam["default"], step=0.01,
                               label="λ: strength (simultaneous, global)", visible=False, elem_id="lam")
            overlay_cb = gr.Checkbox(False, label="Show the catalog's clusters on target and reference",
                                     elem_id="overlay")
            with gr.Accordion("Advanced", open=False):
                psi_sl = gr.Slider(*PSI_RANGE, value=ganedit.MODELS[BUNDLED].truncation_psi, step=0.05,
                                   label="Truncation ψ", elem_id="psi")
                threshold_sl = gr.Slider(0.0, 0.99, value=THRESHOLD, step=0.01,
                                         label="Threshold ρ/(1+ρ) (sequential)", elem_id="threshold")
            edit_btn = gr.Button("Edit", variant="primary", elem_id="edit")
        with gr.Column(scale=3):
            with gr.Tabs():
                with gr.Tab("Edit"):
                    with gr.Row(elem_id="panels"):
                        image_kw = dict(type="numpy", format="png", interactive=False, buttons=["download"],
                                        min_width=120)
                        target_img = gr.Image(label="Target", elem_id="target-image", **image_kw)
                        reference_img = gr.Image(label="Reference", elem_id="reference-image", **image_kw)
                        result_img = gr.Image(label="Result", elem_id="result-image", **image_kw)
                        difference_img = gr.Image(label="Difference (ΔE²)", elem_id="difference-image", **image_kw)
                    metrics_md = gr.Markdown(elem_id="metrics")
                    share_link_tb = gr.Textbox(label="Share link: opens this very edit", buttons=["copy"],
                                               interactive=False, elem_id="share-link")
                    share_query_tb = gr.Textbox(visible="hidden", elem_id="share-query")
                    examples = gr.Examples(
                        [[row[k] for k in EXAMPLE_KEYS] for row in EXAMPLES],
                        inputs=[model_dd, target_num, reference_num, part_dd, method_radio, epsilon_sl],
                        outputs=[target_img, reference_img, result_img, difference_img, metrics_md, share_query_tb,
                                 note_md],  # = PICTURE_OUTPUTS
                        fn=run_example, cache_examples=True, cache_mode="lazy", preprocess=False,
                        api_visibility="private",
                        label="Examples: one striking edit per model (click to load it)",
                        example_labels=[f"{row['model']}: {row['part']} of {row['reference']} onto {row['target']}"
                                        for row in EXAMPLES],
                    )
                with gr.Tab("Grid"):
                    gr.Markdown("One target (the seed on the left), up to four references, one row per part: "
                                "the paper's Fig. 3. Method, ε, λ and ψ are taken from the controls on the left.")
                    with gr.Row():
                        grid_refs = gr.Textbox(_GRID_REFERENCES, label="Reference seeds (1 to 4, comma-separated)",
                                               elem_id="grid-references")
                        grid_parts = gr.CheckboxGroup(_CATALOG.parts, value=grid_default_parts(_CATALOG),
                                                      label="Parts (one row each)", elem_id="grid-parts")
                    grid_btn = gr.Button("Make grid", variant="primary", elem_id="grid-button")
                    grid_img = gr.Image(label="Grid (download as PNG)", type="numpy", format="png",
                                        interactive=False, buttons=["download", "fullscreen"], elem_id="grid-image")

    PANELS = [target_img, reference_img, result_img, difference_img]
    EDIT_INPUTS = [model_dd, target_num, reference_num, part_dd, method_radio, epsilon_sl, lam_sl, psi_sl,
                   threshold_sl, overlay_cb]
    PICTURE_OUTPUTS = [*PANELS, metrics_md, share_query_tb, note_md]
    CONTROLS = [model_dd, model_md, target_num, reference_num, part_dd, method_radio, epsilon_sl, lam_sl, psi_sl,
                threshold_sl, overlay_cb, grid_parts]
    STATE_OUTPUTS = CONTROLS + PICTURE_OUTPUTS
    compute = dict(concurrency_id="compute")
    edit_kw = dict(fn=ui_edit, inputs=EDIT_INPUTS, outputs=PICTURE_OUTPUTS, api_visibility="private",
                   show_progress="minimal", trigger_mode="always_last", **compute)

    def with_link(event):
        event.then(None, share_query_tb, share_link_tb, js=SHARE_LINK_JS)

    with_link(gr.on([edit_btn.click, target_num.submit, reference_num.submit, target_num.blur, reference_num.blur,
                     part_dd.select, epsilon_sl.input, lam_sl.input, psi_sl.input, threshold_sl.input,
                     overlay_cb.input], **edit_kw))
    for number, dice in ((target_num, target_dice), (reference_num, reference_dice)):
        with_link(dice.click(None, None, number, js=RANDOM_SEED_JS).then(**edit_kw))
    with_link(method_radio.input(switch_method, [model_dd, method_radio], [epsilon_sl, lam_sl],
                                 api_visibility="private").then(**edit_kw))
    # A model's first use (download, catalog build) runs in its own queue, with a progress bar over the
    # pictures, so it never holds the edits of other visitors back.
    first_use = dict(outputs=[model_md, *PANELS], api_visibility="private", concurrency_id="first-use")
    with_link(model_dd.select(prepare_model, model_dd, **first_use).then(
        switch_model, [model_dd, target_num, reference_num, part_dd, method_radio, threshold_sl, overlay_cb],
        STATE_OUTPUTS, api_visibility="private", **compute))
    grid_btn.click(ui_grid, [model_dd, target_num, grid_refs, grid_parts, method_radio, epsilon_sl, lam_sl, psi_sl],
                   grid_img, api_name="grid", preprocess=False, **compute)  # raw: any model's parts, checked here
    with_link(demo.load(prepare_linked_model, None, **first_use).then(
        restore, None, STATE_OUTPUTS, api_visibility="private", **compute))

    with_link(examples.load_input_event.then(
        example_controls, [model_dd, target_num, reference_num, part_dd, method_radio, epsilon_sl], STATE_OUTPUTS,
        preprocess=False, api_visibility="private", **compute))  # raw: ε may lie outside the old model's range

    # The API: /edit by names, hidden from the page.
    with gr.Row(visible=False):
        api_inputs = [gr.Textbox(label="model"), gr.Number(label="target_seed"), gr.Number(label="reference_seed"),
                      gr.Textbox(label="part"), gr.Textbox(label="method", value="sequential"),
                      gr.Number(label="epsilon")]
        api_outputs = [gr.Image(label=name, type="numpy", format="png")
                       for name in ("target", "reference", "result", "difference")]
        api_btn = gr.Button()
    api_btn.click(api_edit, api_inputs, api_outputs, api_name="edit", **compute)

demo.queue(default_concurrency_limit=2, max_size=64)

if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a stopped server still removes its example cache
    demo.launch(css=CSS)
