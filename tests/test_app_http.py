"""The web app's HTTP API, through gradio_client against the real server (python app.py, offline, CPU)."""

import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client
from PIL import Image

import ganedit

MODEL = "cartoon-faces"
PART = "eyes"  # the bundled catalog names at least "eyes" and "mouth"
TARGET, REFERENCE = 3, 7


@pytest.fixture(scope="module")
def client(app_url, tmp_path_factory):
    return Client(app_url, verbose=False, download_files=tmp_path_factory.mktemp("downloads"))


@pytest.fixture(scope="module")
def library():
    """The same edit computed in this process straight through the library (no EditService, no app)."""
    G = ganedit.load_generator(MODEL)
    catalog = ganedit.load_catalog(MODEL)
    epsilon = catalog.epsilon["default"]
    return catalog, epsilon, ganedit.edit(G, catalog, TARGET, REFERENCE, PART, "sequential", epsilon)


def read(path):
    return np.asarray(Image.open(path).convert("RGB"))


def edit(client, *args):
    return [read(p) for p in client.predict(*args, api_name="/edit")]


def test_api_lists_edit_and_grid_only(client):
    api = client.view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == {"/edit", "/grid"}
    assert not api["unnamed_endpoints"]
    names = [p["parameter_name"] for p in api["named_endpoints"]["/edit"]["parameters"]]
    assert names == ["model", "target_seed", "reference_seed", "part", "method", "epsilon"]
    assert len(api["named_endpoints"]["/edit"]["returns"]) == 4


def test_edit_returns_the_models_pictures_and_a_difference_panel(client, library):
    _, epsilon, _ = library
    target, reference, result, difference = edit(client, MODEL, TARGET, REFERENCE, PART, "sequential", epsilon)
    size = ganedit.MODELS[MODEL].resolution
    for picture in (target, reference, result):
        assert picture.shape == (size, size, 3)
    # the heat-map is enlarged to display size, with its colour-bar legend to the right
    assert difference.shape[0] >= size and difference.shape[1] > difference.shape[0]
    assert not np.array_equal(target, reference)


def test_edit_agrees_with_the_library_and_changes_mostly_the_part(client, library):
    _, epsilon, expected = library
    target, reference, result, difference = edit(client, MODEL, TARGET, REFERENCE, PART, "sequential", epsilon)
    for got, want in ((target, expected.target), (reference, expected.reference), (result, expected.result)):
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert np.abs(difference.astype(int) - ganedit.difference_panel(expected).astype(int)).max() <= 1
    change = ((result.astype(float) - target.astype(float)) ** 2).sum(-1)
    roi = expected.roi
    assert roi.any() and (~roi).any()
    assert change.sum() > 0, "the edit changed nothing"
    inside, outside = change[roi].mean(), change[~roi].mean()
    assert inside > 5 * outside, f"per pixel, the part changed {inside:.1f} and the rest {outside:.1f}"


def test_epsilon_zero_leaves_the_target_alone_and_a_larger_one_changes_more(client, library):
    catalog, _, _ = library
    changes = []
    for epsilon in (0.0, catalog.epsilon["default"], catalog.epsilon["max"]):
        target, _, result, _ = edit(client, MODEL, TARGET, REFERENCE, PART, "sequential", epsilon)
        changes.append(np.abs(result.astype(int) - target.astype(int)).sum())
    assert changes[0] <= changes[1] <= changes[2] and changes[2] > changes[0]


BAD_INPUTS = {
    "seed -1": ((MODEL, -1, REFERENCE, PART, "sequential", 1.0), ["target seed", "0 to 4294967295"]),
    "seed 2**32": ((MODEL, TARGET, 2**32, PART, "sequential", 1.0), ["reference seed", "0 to 4294967295"]),
    "fractional seed": ((MODEL, 2.5, REFERENCE, PART, "sequential", 1.0), ["target seed", "whole number"]),
    "negative epsilon": ((MODEL, TARGET, REFERENCE, PART, "sequential", -1.0), ["ε must be a number from 0 to"]),
    "unknown part": ((MODEL, TARGET, REFERENCE, "tail", "sequential", 1.0), ["got &#x27;tail&#x27;", PART]),
    "markup in a part": ((MODEL, TARGET, REFERENCE, "<img src=x>", "sequential", 1.0), ["&lt;img src=x&gt;"]),
    "cluster out of range": ((MODEL, TARGET, REFERENCE, "clusters:3,99", "sequential", 1.0),
                             ["&#x27;clusters:&#x27; and cluster ids from 0 to 31"]),
    "unknown model": (("no-such-model", TARGET, REFERENCE, PART, "sequential", 1.0),
                      ["model must be one of", MODEL, "stylegan2-cats"]),
    "official model without weights": (("stylegan2-cats", TARGET, REFERENCE, PART, "sequential", 1.0),
                                       ["stylegan2-cats is not available: its weights are not available"]),
    "unknown method": ((MODEL, TARGET, REFERENCE, PART, "best", 1.0), ["method", "sequential, simultaneous, global"]),
}

def assert_still_serving(client, library):
    _, epsilon, expected = library
    result = edit(client, MODEL, TARGET, REFERENCE, PART, "sequential", epsilon)[2]
    assert np.abs(result.astype(int) - expected.result.astype(int)).max() <= 1


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_clear_error_and_the_server_keeps_serving(client, library, case):
    args, words = BAD_INPUTS[case]
    with pytest.raises(Exception) as caught:
        client.predict(*args, api_name="/edit")
    message = str(caught.value)
    for word in words:
        assert word in message, f"{case}: {word!r} missing from the error {message!r}"
    assert_still_serving(client, library)


def test_nan_epsilon_is_a_clear_error(app_url, client, library):
    # gradio_client refuses to send NaN (not JSON), so post the JSON by hand as a browser could
    body = f'{{"data": ["{MODEL}", {TARGET}, {REFERENCE}, "{PART}", "sequential", NaN]}}'
    with httpx.Client(base_url=app_url, timeout=60) as http:
        response = http.post("gradio_api/call/edit", content=body, headers={"content-type": "application/json"})
        response.raise_for_status()
        events = http.get(f"gradio_api/call/edit/{response.json()['event_id']}").text
    assert "event: error" in events
    data = json.loads(events.split("event: error", 1)[1].split("data:", 1)[1].splitlines()[0])
    assert "ε must be a number from 0 to" in data["error"] and "nan" in data["error"].lower()
    with pytest.raises(Exception, match="ε must be"):
        client.predict(MODEL, TARGET, REFERENCE, PART, "sequential", "NaN", api_name="/edit")
    assert_still_serving(client, library)


def test_grid_is_one_png_with_a_column_per_reference(client, library):
    catalog, epsilon, _ = library
    parts = [PART, catalog.parts[-1]]
    one = Image.open(client.predict(MODEL, TARGET, "7", parts, "sequential", epsilon, 5.0, 1.0, api_name="/grid"))
    three = Image.open(client.predict(MODEL, TARGET, "7, 11, 21", parts, "sequential", epsilon, 5.0, 1.0,
                                      api_name="/grid"))
    assert one.format == three.format == "PNG"
    assert three.height == one.height and three.width > 1.8 * one.width
    assert three.height > 2 * ganedit.MODELS[MODEL].resolution  # a first row plus one row per part
    with pytest.raises(Exception, match="a grid takes 1 to 4 references; got 5"):
        client.predict(MODEL, TARGET, "1, 2, 3, 4, 5", parts, "sequential", epsilon, 5.0, 1.0, api_name="/grid")
    with pytest.raises(Exception, match="own_epsilon must be true or false; got a str"):
        client.predict(MODEL, TARGET, "7", parts, "sequential", epsilon, 5.0, 1.0, "false", api_name="/grid")
    # a crafted call with 1,000 parts is refused before any work (it once took 68 s and 3.6 GB)
    with pytest.raises(Exception, match="a grid takes 1 to 6 parts; got 1000"):
        client.predict(MODEL, TARGET, "7", [PART] * 1000, "sequential", epsilon, 5.0, 1.0, api_name="/grid")


def test_a_grid_row_takes_its_parts_own_default_unless_told_to_use_the_slider(client, library):
    catalog, epsilon, _ = library
    own = catalog.default_epsilon(PART)
    assert own != epsilon  # the bundled catalog gives the eyes their own default

    def grid(slider, own_epsilon):
        return read(client.predict(MODEL, TARGET, "7", [PART], "sequential", slider, 5.0, 1.0, own_epsilon,
                                   api_name="/grid"))

    by_default = grid(epsilon, True)
    assert np.array_equal(by_default, grid(own, False))
    assert not np.array_equal(by_default, grid(epsilon, False))


def test_methods_all_run_and_differ(client, library):
    _, epsilon, _ = library
    results = [edit(client, MODEL, TARGET, REFERENCE, PART, method, epsilon)[2] for method in ganedit.METHODS]
    assert all(r.shape == results[0].shape for r in results)
    assert not all(np.array_equal(results[0], r) for r in results[1:])
    assert math.isfinite(float(np.mean(results[0])))


def test_identical_concurrent_edits_all_get_the_whole_picture(app_url, library, tmp_path):
    """16 identical calls at once: each gets a complete, identical result (Gradio once rewrote a shared file
    while sending it, and a quarter of such calls failed)."""
    _, epsilon, expected = library

    def one(i):
        client = Client(app_url, verbose=False, download_files=tmp_path / str(i))
        return read(client.predict(MODEL, TARGET, REFERENCE, PART, "sequential", epsilon, api_name="/edit")[2])

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(16)))
    assert len(results) == 16
    for result in results:
        assert np.array_equal(result, results[0])
    assert np.abs(results[0].astype(int) - expected.result.astype(int)).max() <= 1


def test_every_example_fits_its_catalog():
    """examples/examples.json is data the app shows; a value out of range would fall back with a note."""
    rows = json.loads((Path(__file__).resolve().parent.parent / "examples" / "examples.json").read_text())
    for row in rows:
        assert row["model"] in ganedit.BUNDLED_MODELS, "examples of official models come with their catalogs"
        catalog = ganedit.load_catalog(row["model"])
        request = ganedit.EditRequest.strict(lambda _: catalog, **row)
        assert request.target != request.reference


def test_a_part_given_by_its_clusters_gives_the_named_parts_edit(client, library):
    catalog, epsilon, expected = library
    clusters = "clusters:" + ",".join(str(i) for i in catalog.part_clusters(PART))
    result = edit(client, MODEL, TARGET, REFERENCE, clusters, "sequential", epsilon)[2]
    assert np.abs(result.astype(int) - expected.result.astype(int)).max() <= 1
