"""ganedit web app: local semantic editing of GAN images ("Editing in Style", Collins et al., CVPR 2020).

The UI and nothing else: ``build_demo(service)`` lays out the page and wires it to the public ``ganedit`` API.
Every edit is an ``ganedit.EditRequest`` (strict for the controls and the API, lenient for share links and
examples); nothing a request carries is shown as markup. Run ``python app.py`` (port from GRADIO_SERVER_PORT).
"""

import spaces  # noqa: I001  first: on ZeroGPU Spaces it has to be imported before torch

import atexit
import html
import json
import logging
import os
import signal
import sys
import urllib.parse
from pathlib import Path

import gradio as gr

import ganedit
from ganedit import EditRequest

DEFAULT_MODEL = ganedit.BUNDLED_MODELS[0]
MODEL_ORDER = [DEFAULT_MODEL, *(name for name in ganedit.MODELS if name != DEFAULT_MODEL)]
EXAMPLES_FILE = Path(__file__).resolve().parent / "examples" / "examples.json"
CANDIDATES = 6  # reference thumbnails per strip

DESCRIPTION = """## ganedit: move one part of a picture onto another
Pick a **target**, a **reference** (each a seed of the generator) and a **part**: the part's look moves from the
reference to the target, the rest stays put (*Editing in Style*, Collins et al., CVPR 2020)."""
HELP = """**ε** (sequential): how much change outside the part is allowed; more ε carries more of the reference's
look. **λ** (simultaneous, global): strength. **In-MSE / Out-MSE**: mean colour change (CIELAB ΔE²) inside / outside
the part; a local edit has a high In-MSE and a low Out-MSE."""
CSS = """
#panels img { image-rendering: pixelated; }
#model-note p { font-size: 13px; margin: 0; }
#method label { padding: 4px 8px; }
.legend { display: flex; align-items: center; gap: 8px; font-size: 14px; flex-wrap: wrap; }
.legend .bar { width: 160px; height: 14px; border: 1px solid #555; }
.legend .swatch { display: inline-block; width: 14px; height: 14px; border: 1px solid #555; vertical-align: middle; }
#note textarea { color: #7a3e00; font-weight: 600; }
/* a long choice ends in '…' before the dropdown's arrow instead of running under it */
.secondary-wrap input { padding-right: 28px !important; text-overflow: ellipsis; }
@media (max-width: 640px) {  /* phones: pictures as tall as they are wide, a smaller title */
  #panels > .block { height: auto !important; }
  h2 { font-size: 20px !important; }
}
"""
# Gradio's default grey for secondary text (slider ends, footer) and its indigo button are under 4.5:1 contrast.
THEME = gr.themes.Default(primary_hue=gr.themes.colors.indigo, secondary_hue=gr.themes.colors.slate).set(
    body_text_color_subdued="*neutral_600", button_primary_background_fill="*primary_700",
    button_primary_background_fill_hover="*primary_800",
)


def sentence(err):
    """An error as one escaped sentence for a toast (Gradio renders toasts as HTML)."""
    return html.escape(str(err).rstrip(". ") + ".")


def load_examples(service):
    """The examples this server can show: its model ready or downloadable here, with a catalog already built."""
    rows = json.loads(EXAMPLES_FILE.read_text())
    return [row for row in rows if row.get("model") in ganedit.MODELS and service.has_catalog(row["model"])
            and service.state(row["model"])[0] != "unavailable"]


def example_label(row):
    """E.g. 'eyes of 12 onto 9 (sequential)', after the model's short title unless it is the default model."""
    title = ganedit.MODELS[row["model"]].title.split(" (")[0]  # without '(bundled, StyleGAN2)': labels stay short
    model = "" if row["model"] == DEFAULT_MODEL else f"{title}: "
    return f"{model}{row['part']} of {row['reference']} onto {row['target']} ({row['method']})"


def part_label(name):
    """How a part's name reads on the page: 'facial_hair' as 'facial hair' (links and the API keep the name)."""
    return name.replace("_", " ")


def part_choices(catalog, part=None):
    """The part list, (label, name) pairs: the catalog's parts, and a click selection ('clusters:3,7') when that is
    the part."""
    names = catalog.parts if part is None or part in catalog.parts else [*catalog.parts, part]
    return [(part_label(name), name) for name in names]


def difference_legend(vmax, own_scale):
    colours = ", ".join(ganedit.heatmap_colours())
    scale = "this edit's own scale" if own_scale else "the same scale for every edit"
    return (f'<div class="legend"><span>Difference ΔE²: 0</span><span class="bar" style="background: '
            f'linear-gradient(to right, {colours})"></span><span>{vmax:,.0f}{"" if own_scale else " and more"}'
            f"</span><span>({scale})</span></div>")


def cluster_legend(catalog):
    """Which colour is which part in the overlay."""
    swatch = '<span class="swatch" style="background: rgb{}"></span>'
    items = [f"<span>{swatch.format(colour)} {html.escape(part_label(part))}</span>"
             for part, colour in ganedit.part_palette(catalog).items()]
    return f'<div class="legend">Overlay: {" ".join(items)}</div>'


def usable_model(service):
    """The model a page falls back to: the first in MODEL_ORDER that is on this machine and loads."""
    for name in MODEL_ORDER:
        if service.state(name)[0] == "ready":
            try:
                service.model(name)
                return name
            except ValueError:
                continue
    return None


def unavailable_page():
    with gr.Blocks(title="ganedit: Editing in Style") as demo:
        gr.Markdown(DESCRIPTION + "\n\n**No model can be used on this server right now.** Its log says why.")
    return demo


def build_demo(service, labelling=False):
    """The page, wired to ``service`` (a ganedit.EditService). Nothing is loaded before this is called.

    ``labelling`` adds controls that name the selected clusters and save the names into the model's
    labels file: for the server's owner, never on a public Space (the controls don't exist otherwise).
    """
    fallback = usable_model(service)
    if fallback is None:
        return unavailable_page()
    pictures = ganedit.PictureFolders()
    atexit.register(pictures.remove)
    catalog = service.catalog(fallback)
    examples = load_examples(service)
    first = EditRequest.lenient(service.catalog, examples[0] if examples else {}, fallback)[0]

    def model_choices():
        return [(f"{ganedit.MODELS[name].title} · {service.state(name)[1]}", name) for name in MODEL_ORDER]

    def model_note(name):
        license_name = ganedit.MODELS[name].license.split(". ")[0].split(", like")[0]
        return f"{service.state(name)[1].capitalize()} · License: {license_name}"

    def example_defaults(model):
        return next((row for row in examples if row["model"] == model), None)

    with gr.Blocks(title="ganedit: Editing in Style", delete_cache=(1800, 3600)) as demo:
        gr.Markdown(DESCRIPTION)
        note_tb = gr.Textbox(label="Note", visible=False, interactive=False, lines=1, max_lines=6, elem_id="note")
        with gr.Row():
            with gr.Column(scale=2, min_width=300):
                model_dd = gr.Dropdown(model_choices(), value=first.model, label="Model", elem_id="model")
                model_md = gr.Markdown(model_note(first.model), elem_id="model-note")
                with gr.Row(equal_height=True):
                    target_num = gr.Number(first.target, label="Target seed", minimum=0, maximum=ganedit.MAX_SEED,
                                           step=1, min_width=120, elem_id="target")
                    reference_num = gr.Number(first.reference, label="Reference seed", minimum=0,
                                              maximum=ganedit.MAX_SEED, step=1, min_width=120, elem_id="reference")
                with gr.Row():
                    target_random = gr.Button("Random target", size="sm", min_width=120, elem_id="target-random")
                    reference_random = gr.Button("Random reference", size="sm", min_width=120,
                                                 elem_id="reference-random")
                part_dd = gr.Dropdown(part_choices(catalog, first.part), value=first.part,
                                      label="Part (or click the target or reference)", elem_id="part")
                method_radio = gr.Radio(list(ganedit.METHODS), value=first.method, label="Method", elem_id="method")
                global_md = gr.Markdown("The global method moves the whole picture toward the reference: it "
                                        "ignores the part.", visible=False, elem_id="global-note")
                epsilon_sl = gr.Slider(catalog.epsilon["min"], catalog.epsilon["max"], value=first.epsilon,
                                       step=ganedit.SLIDER_STEP,
                                       label="ε: change allowed outside the part", elem_id="epsilon")
                lam_sl = gr.Slider(catalog.lam["min"], catalog.lam["max"], value=first.lam, step=ganedit.SLIDER_STEP,
                                   label="λ: strength", visible=False, elem_id="lam")
                with gr.Row():
                    edit_btn = gr.Button("Edit", variant="primary", size="md", min_width=100, elem_id="edit")
                    reset_btn = gr.Button("Reset ε / λ", size="md", min_width=100, elem_id="reset")
                psi_sl = gr.Slider(*ganedit.PSI_RANGE, value=first.psi, step=0.05,
                                   label="Truncation ψ (lower: more typical pictures)", elem_id="psi")
                with gr.Accordion("More settings", open=False):
                    threshold_sl = gr.Slider(ganedit.THRESHOLD_RANGE[0], 0.99, value=first.threshold, step=0.01,
                                             label="Threshold ρ/(1+ρ): channels below it never move (sequential)",
                                             elem_id="threshold")
                if labelling:
                    with gr.Accordion("Name parts (labelling mode: this server's owner only)", open=True):
                        name_tb = gr.Textbox(label="Name", placeholder="e.g. eyes", elem_id="label-name")
                        with gr.Row():
                            name_btn = gr.Button("Name the selection", size="sm", elem_id="label-set")
                            merge_btn = gr.Button("Add it to that part", size="sm", elem_id="label-merge")
                            rename_btn = gr.Button("Rename the part", size="sm", elem_id="label-rename")
            with gr.Column(scale=5):
                with gr.Tabs():
                    with gr.Tab("Edit"):
                        with gr.Row(elem_id="panels"):
                            image = dict(type="filepath", format="png", interactive=False, buttons=["download"],
                                         min_width=150, height=230)
                            target_img = gr.Image(label="Target", elem_id="target-image", **image)
                            reference_img = gr.Image(label="Reference", elem_id="reference-image", **image)
                            result_img = gr.Image(label="Result", elem_id="result-image", **image)
                            difference_img = gr.Image(label="Difference", elem_id="difference-image", **image)
                        with gr.Row():
                            overlay_cb = gr.Checkbox(False, label="Show the parts on target and reference",
                                                     elem_id="overlay")
                            own_scale_cb = gr.Checkbox(False, label="Scale the difference to this edit",
                                                       elem_id="own-scale")
                            restart_btn = gr.Button("New click selection", size="sm", elem_id="restart")
                        legend_html = gr.HTML(elem_id="legend")
                        metrics_md = gr.Markdown(elem_id="metrics")
                        share_link_tb = gr.Textbox(label="Share link: opens this very edit", buttons=["copy"],
                                                   interactive=False, elem_id="share-link")
                        share_query_tb = gr.Textbox(visible="hidden", elem_id="share-query")
                        candidates = gr.Gallery(label="Other references: click one to use it", columns=CANDIDATES,
                                                height=130, allow_preview=False, elem_id="candidates")
                        more_btn = gr.Button("More references", size="sm", elem_id="more")
                        examples_ds = gr.Dataset(
                            components=[gr.Textbox(visible=False)], label="Examples", type="index",
                            samples=[[example_label(row)] for row in examples],
                            elem_id="examples")
                        gr.Markdown(HELP)
                    with gr.Tab("Grid"):
                        gr.Markdown(f"One target (the seed on the left), up to {ganedit.MAX_GRID_REFERENCES} "
                                    f"references and up to {ganedit.MAX_GRID_PARTS} parts, one row each: the paper's "
                                    "Fig. 3. Method, λ and ψ come from the controls on the left, and so does ε "
                                    "unless each part takes its own default (a part that shares its channels with "
                                    "a larger one needs a larger ε; each row says what it used).")
                        with gr.Row():
                            grid_refs = gr.Textbox("12, 11, 21, 42", label="Reference seeds, comma-separated",
                                                   elem_id="grid-references")
                            grid_parts = gr.CheckboxGroup(part_choices(catalog), value=ganedit.default_parts(catalog),
                                                          label="Parts", elem_id="grid-parts")
                        grid_own_epsilon_cb = gr.Checkbox(True, label="Each part at its own default ε",
                                                          elem_id="grid-own-epsilon")
                        grid_btn = gr.Button("Make grid", variant="primary", elem_id="grid-button")
                        grid_img = gr.Image(label="Grid", type="filepath", format="png", interactive=False,
                                            buttons=["download", "fullscreen"], elem_id="grid-image")
        candidate_seeds = gr.State([])

        # ---- the edit: controls -> request -> pictures ---------------------------------------------------
        PANELS = [target_img, reference_img, result_img, difference_img]
        EDIT_OUTPUTS = [*PANELS, legend_html, metrics_md, share_query_tb, note_tb]
        CONTROLS = [model_dd, target_num, reference_num, part_dd, method_radio, epsilon_sl, lam_sl, psi_sl,
                    threshold_sl]
        VIEW = [overlay_cb, own_scale_cb]

        def edit_outputs(request, notes=(), overlay=False, own_scale=False):
            result, overlays = compute(request, overlay)
            vmax = ganedit.percentile_scale(result.difference) if own_scale else ganedit.DIFFERENCE_SCALE
            shown = dict(zip(("target", "reference"), overlays or (result.target, result.reference)))
            files = pictures.write(request.file_stem(), {
                **{k: ganedit.enlarge(v) for k, v in shown.items()}, "result": ganedit.enlarge(result.result),
                "difference": ganedit.difference_picture(result, vmax)})
            alt = {"target": f"target: seed {request.target}", "reference": f"reference: seed {request.reference}",
                   "result": f"result: {request.describe()}",
                   "difference": "difference between target and result, brightest where the colour changed most"}
            legend = difference_legend(vmax, own_scale)
            if overlay:
                legend += cluster_legend(service.catalog(request.model))
            metrics = (f"**In-MSE** {result.in_mse:.0f} · **Out-MSE** {result.out_mse:.0f} · "
                       f"**{result.inside_share:.0%}** of the change is inside the part "
                       f"({html.escape(request.part)}, {result.roi.mean():.0%} of the picture) · "
                       f"{result.channels_moved} style channels moved")
            if not result.channels_moved:
                metrics += " · **nothing moved**: " + ganedit.why_nothing_moved(
                    request.method, request.epsilon, request.lam, request.threshold)
            return [*(gr.update(value=files[k], alt_text=alt[k]) for k in alt), legend, metrics, request.to_query(),
                    gr.update(value="\n".join(notes), visible=bool(notes))]

        @spaces.GPU
        def compute(request, overlay):
            return service.edit(request), (service.overlays(request) if overlay else None)

        def on_edit(*values):
            *controls, overlay, own_scale = values
            try:
                request = EditRequest.strict(service.catalog, *controls)
            except ValueError as err:
                raise gr.Error(sentence(err)) from None
            return edit_outputs(request, (), overlay, own_scale)

        edit_event = dict(fn=on_edit, inputs=CONTROLS + VIEW, outputs=EDIT_OUTPUTS, api_visibility="private",
                          show_progress="minimal", trigger_mode="always_last", preprocess=False,
                          concurrency_id="edit")
        FOLLOW_JS = ("(q) => { if (!q) return ''; history.replaceState(null, '', '?' + q); "
                     "return location.origin + location.pathname + '?' + q; }")

        def with_link(event):
            """After an edit: the share link, and the address bar follows (a reload restores the edit)."""
            return event.then(None, share_query_tb, share_link_tb, js=FOLLOW_JS)

        with_link(gr.on([edit_btn.click, target_num.submit, reference_num.submit, target_num.blur,
                         reference_num.blur, epsilon_sl.input, lam_sl.input, psi_sl.input,
                         threshold_sl.input, overlay_cb.input, own_scale_cb.input], **edit_event))
        random_js = f"() => Math.floor(Math.random() * {ganedit.MAX_SEED + 1})"
        for number, button in ((target_num, target_random), (reference_num, reference_random)):
            with_link(button.click(None, None, number, js=random_js).then(**edit_event))

        def reset(model, method, part):
            catalog = service.catalog(model)
            return (catalog.default_epsilon(part) if method == "sequential" else gr.skip(),
                    ganedit.lam_range(catalog, method)["default"] if method != "sequential" else gr.skip())

        with_link(reset_btn.click(reset, [model_dd, method_radio, part_dd], [epsilon_sl, lam_sl],
                                  api_visibility="private", preprocess=False).then(**edit_event))

        def part_default(model, part):
            """A catalog with measured per-part defaults starts each picked part at its own ε."""
            catalog = service.catalog(model)
            return catalog.default_epsilon(part) if "per_part" in catalog.epsilon else gr.skip()

        with_link(part_dd.select(part_default, [model_dd, part_dd], epsilon_sl, api_visibility="private",
                                 preprocess=False).then(**edit_event))

        def switch_method(model, method):
            catalog, sequential = service.catalog(model), method == "sequential"
            lams = ganedit.lam_range(catalog, method)
            return (gr.update(visible=sequential), gr.update(visible=not sequential, minimum=lams["min"],
                                                             maximum=lams["max"], value=lams["default"]),
                    gr.update(interactive=method != "global"), gr.update(visible=method == "global"))

        with_link(method_radio.input(switch_method, [model_dd, method_radio], [epsilon_sl, lam_sl, part_dd, global_md],
                                     api_visibility="private", preprocess=False).then(**edit_event))

        # ---- parts by clicking: the first click picks a cluster, later ones add or remove clusters ------------
        adding = gr.State(False)

        def click(model, seed, psi, part, keep_adding, event: gr.SelectData):
            try:
                catalog = service.catalog(model)
                shown = ganedit.enlarge(service.picture(model, seed, psi))
                cluster = service.cluster_at(model, seed, psi, *event.index, (shown.shape[1], shown.shape[0]))
                selected = set(catalog.part_clusters(part)) if keep_adding else set()
            except (ValueError, TypeError) as err:
                raise gr.Error(sentence(err)) from None
            selected ^= {cluster}  # a click on a selected cluster takes it away again
            part = catalog.part_name(sorted(selected)) if selected else part
            return gr.update(choices=part_choices(catalog, part), value=part), True, True  # overlay on: see it

        for picture, seed in ((target_img, target_num), (reference_img, reference_num)):
            with_link(picture.select(click, [model_dd, seed, psi_sl, part_dd, adding], [part_dd, adding, overlay_cb],
                                     api_visibility="private", preprocess=False).then(**edit_event))
        gr.on([restart_btn.click, part_dd.select], lambda: False, None, adding, api_visibility="private")

        # ---- labelling mode: names saved into catalogs/<model>.labels.json --------------------------------
        if labelling:
            def relabel(change):
                def handler(model, part, name):
                    catalog = service.catalog(model)
                    try:
                        change(catalog, part, name)
                        catalog.save_labels()
                    except ValueError as err:
                        raise gr.Error(sentence(err)) from None
                    gr.Info(html.escape(f"saved the part names in {catalog.path}.labels.json"))
                    # the selection is that part now
                    return gr.update(choices=part_choices(catalog, name.strip()), value=name.strip())
                return handler

            for button, change in ((name_btn, lambda c, part, name: c.rename(c.part_clusters(part), name)),
                                   (merge_btn, lambda c, part, name: c.merge(c.part_clusters(part), name)),
                                   (rename_btn, lambda c, part, name: c.rename_part(part, name))):
                with_link(button.click(relabel(change), [model_dd, part_dd, name_tb], part_dd,
                                       api_visibility="private", preprocess=False).then(**edit_event))

        # ---- whole-page states: share links, examples, model switches ---------------------------------------
        def show(request, notes=(), overlay=False, own_scale=False):
            """Every control set to ``request``, with its model's ranges and parts, and the edit's pictures."""
            catalog, lams = service.catalog(request.model), ganedit.lam_range(service.catalog(request.model),
                                                                              request.method)
            sequential, is_global = request.method == "sequential", request.method == "global"
            controls = [
                gr.update(value=request.model, choices=model_choices()), model_note(request.model),
                request.target, request.reference,
                gr.update(choices=part_choices(catalog, request.part), value=request.part, interactive=not is_global),
                request.method, gr.update(visible=is_global),
                gr.update(minimum=catalog.epsilon["min"], maximum=catalog.epsilon["max"], value=request.epsilon,
                          visible=sequential),
                gr.update(minimum=lams["min"], maximum=lams["max"], value=request.lam, visible=not sequential),
                request.psi, request.threshold,
                gr.update(choices=part_choices(catalog), value=ganedit.default_parts(catalog)),
            ]
            return controls + edit_outputs(request, notes, overlay, own_scale)

        PAGE = [model_dd, model_md, target_num, reference_num, part_dd, method_radio, global_md, epsilon_sl, lam_sl,
                psi_sl, threshold_sl, grid_parts] + EDIT_OUTPUTS
        page_event = dict(outputs=PAGE, api_visibility="private", concurrency_id="edit")

        def open_link(request: gr.Request, progress=gr.Progress()):
            """Page load: the edit a share link names (leniently), else the first example."""
            query = dict(request.query_params) if request is not None else {}
            values = query if any(key in query for key in ganedit.REQUEST_FIELDS) else (examples[0] if examples
                                                                                          else {})
            edit, notes = EditRequest.lenient(service.catalog, values, fallback, example_defaults)
            return show(edit, notes)

        with_link(demo.load(open_link, None, **page_event))

        def switch_model(model, last_query, overlay, own_scale, progress=gr.Progress()):
            """The model dropdown: the new model's first use (download, catalog) with progress, then its
            example edit; if it can't be used here, one sentence and the page stays as it was."""
            title = ganedit.MODELS[model].title
            try:
                service.model(model, progress=lambda fraction, message: progress(
                    fraction, desc=f"First use of {title}: {message} (a few minutes, once)"))
            except ValueError as err:
                gr.Warning(sentence(err))
                last = dict(urllib.parse.parse_qsl(last_query or ""))
                previous, _ = EditRequest.lenient(service.catalog, last, fallback)
                return show(previous, (), overlay, own_scale)
            edit, _ = EditRequest.lenient(service.catalog, {"model": model}, fallback, example_defaults)
            return show(edit, (), overlay, own_scale)

        with_link(model_dd.select(switch_model, [model_dd, share_query_tb, *VIEW], concurrency_id="first-use",
                                  outputs=PAGE, api_visibility="private", preprocess=False,
                                  show_progress_on=result_img))  # one progress bar, where the result will be

        def open_example(index, overlay, own_scale):
            edit, notes = EditRequest.lenient(service.catalog, examples[int(index)], fallback, example_defaults)
            return show(edit, notes, overlay, own_scale)

        # the last click wins: a click while an example is still being edited would otherwise be dropped
        with_link(examples_ds.click(open_example, [examples_ds, *VIEW], trigger_mode="always_last", **page_event))

        # ---- references by looking -------------------------------------------------------------------------
        def strip(model, psi, seeds=()):
            """Thumbnails of the next CANDIDATES seeds after ``seeds`` (from seed 0 when there are none)."""
            start = max(seeds) + 1 if seeds else 0
            seeds = list(range(start, start + CANDIDATES))
            try:
                paths = pictures.write(f"{model}_psi{psi:g}", {f"seed{s}": service.picture(model, s, float(psi))
                                                               for s in seeds})
            except (ValueError, TypeError) as err:
                raise gr.Error(sentence(err)) from None
            return [(paths[f"seed{s}"], f"seed {s}") for s in seeds], seeds

        strip_event = dict(fn=strip, outputs=[candidates, candidate_seeds], api_visibility="private",
                           preprocess=False, concurrency_id="edit")
        more_btn.click(inputs=[model_dd, psi_sl, candidate_seeds], **strip_event)
        gr.on([demo.load, model_dd.change], inputs=[model_dd, psi_sl], **strip_event)

        def pick(seeds, event: gr.SelectData):
            return seeds[event.index]

        with_link(candidates.select(pick, candidate_seeds, reference_num, api_visibility="private").then(**edit_event))

        # ---- the grid (its own lane, so grids never hold up edits) -----------------------------------------
        @spaces.GPU(duration=120)
        def compute_grid(grid, progress):
            return service.grid(grid, lambda fraction, message=None: progress(fraction, desc=message))

        def make_grid(model, target, references, parts, method, epsilon, lam, psi, own_epsilon=True,
                      progress=gr.Progress()):
            """The paper's Fig. 3 as one PNG: a target seed, 1 to 4 reference seeds (text, comma-separated), 1 to 6
            parts, a method, ε, λ and ψ; own_epsilon (true or false): each part at its own default ε instead."""
            try:
                if not isinstance(own_epsilon, bool):
                    raise ValueError(f"own_epsilon must be true or false; got a {type(own_epsilon).__name__}")
                if own_epsilon:
                    epsilon = None
                seeds = str(references or "").replace(",", " ").split()
                grid = ganedit.GridRequest.strict(service.catalog, model, target, seeds, parts or [], method,
                                                  epsilon, lam, psi)
                image = compute_grid(grid, progress)
            except ValueError as err:
                raise gr.Error(sentence(err)) from None
            return pictures.write(f"{model}_t{grid.target}_grid", {"grid": image})["grid"]

        grid_btn.click(make_grid, [model_dd, target_num, grid_refs, grid_parts, method_radio, epsilon_sl, lam_sl,
                                   psi_sl, grid_own_epsilon_cb], grid_img, api_name="grid", preprocess=False,
                       concurrency_id="grid", concurrency_limit=1)

        # ---- the API: /edit by names --------------------------------------------------------------------
        def api_edit(model, target_seed, reference_seed, part, method, epsilon):
            """One edit: model (e.g. "cartoon-faces"), two seeds (0 to 2**32-1), a part of the model's catalog
            (e.g. "eyes"), a method (sequential, simultaneous, global) and ε for sequential (empty: the catalog's
            default; the other methods use the catalog's λ). Returns target, reference and result at the model's
            size, and the difference heat-map (enlarged, with a legend on this edit's own scale)."""
            try:
                request = EditRequest.strict(service.catalog, model, target_seed, reference_seed, part, method,
                                             epsilon)
                result, _ = compute(request, False)
            except ValueError as err:
                raise gr.Error(f"/edit: {sentence(err)}") from None
            files = pictures.write(request.file_stem(), {"target": result.target, "reference": result.reference,
                                                         "result": result.result,
                                                         "difference": ganedit.difference_panel(result)})
            return [files[k] for k in ("target", "reference", "result", "difference")]

        with gr.Row(visible=False):
            api_inputs = [gr.Textbox(label="model"), gr.Number(label="target_seed"), gr.Number(label="reference_seed"),
                          gr.Textbox(label="part"), gr.Textbox(label="method", value="sequential"),
                          gr.Number(label="epsilon")]
            api_outputs = [gr.Image(label=name, type="filepath", format="png")
                           for name in ("target", "reference", "result", "difference")]
            api_btn = gr.Button()
        api_btn.click(api_edit, api_inputs, api_outputs, api_name="edit", preprocess=False, concurrency_id="edit")

    demo.queue(default_concurrency_limit=2, max_size=64)
    return demo


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    labelling = os.environ.get("GANEDIT_LABELLING") == "1" or "--labelling" in sys.argv[1:]
    demo = build_demo(ganedit.EditService(), labelling=labelling)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a stopped server still removes its picture folder
    demo.launch(css=CSS, theme=THEME)
