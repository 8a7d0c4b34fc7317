"""EditRequest and GridRequest, in process: strict for the API and the controls, lenient for share links."""

import urllib.parse

import pytest

import ganedit
from ganedit import EditRequest, GridRequest, RequestError

MODEL = "cartoon-faces"


@pytest.fixture(scope="module")
def catalog():
    return ganedit.load_catalog(MODEL)


@pytest.fixture(scope="module")
def catalog_of(catalog):
    def lookup(model):
        if model != MODEL:
            raise ganedit.ModelUnavailableError(f"{model} is not available: its weights are not on this server")
        return catalog
    return lookup


def test_strict_fills_in_the_models_defaults(catalog_of, catalog):
    request = EditRequest.strict(catalog_of, MODEL, 9, "12", "eyes")
    assert (request.target, request.reference, request.method) == (9, 12, "sequential")
    assert request.epsilon == catalog.default_epsilon("eyes") and request.lam == catalog.lam["default"]
    assert request.psi == ganedit.MODELS[MODEL].truncation_psi and request.threshold == ganedit.DEFAULT_THRESHOLD
    assert EditRequest.strict(catalog_of, MODEL, 9, 12, "eyes", "global").lam == 1.0


@pytest.mark.parametrize("field, values, words", [
    ("model", dict(model="nope"), "model must be one of cartoon-faces"),
    ("target seed", dict(target=1.5), "target seed must be a whole number from 0 to 4294967295; got 1.5"),
    ("target seed", dict(target=-1), "got -1"),
    ("reference seed", dict(reference=2**32), "reference seed must be a whole number"),
    ("reference seed", dict(reference=True), "got True"),
    ("part", dict(part="tail"), "part must be one of the model's parts (background, "),
    ("method", dict(method="magic"), "method must be one of sequential, simultaneous, global"),
    ("ε", dict(epsilon=float("nan")), "ε must be a number from 0 to 21"),
    ("ε", dict(epsilon=500), "ε must be a number from 0 to 21; got 500"),
    ("λ", dict(method="global", lam=2), "λ must be a number from 0 to 1; got 2"),
    ("truncation ψ", dict(psi="x"), "truncation ψ must be a number from 0 to 2; got 'x'"),
    ("threshold", dict(threshold=1), "threshold must be a number from 0 to just under 1; got 1"),
])
def test_strict_names_the_field_and_what_is_allowed(catalog_of, field, values, words):
    arguments = {**dict(model=MODEL, target=9, reference=12, part="eyes", method="sequential"), **values}
    with pytest.raises(RequestError) as caught:
        EditRequest.strict(catalog_of, **arguments)
    assert caught.value.field == field and words in str(caught.value)


def test_strict_passes_on_a_model_that_cannot_be_used(catalog_of):
    with pytest.raises(ganedit.ModelUnavailableError, match="stylegan-ffhq is not available"):
        EditRequest.strict(catalog_of, "stylegan-ffhq", 1, 2, "eyes")


def test_a_long_bad_value_is_quoted_short():
    with pytest.raises(RequestError) as caught:
        ganedit.request.parse_seed("9" * 500 + "x", "target seed")
    assert len(str(caught.value)) < 120


def test_query_string_round_trip(catalog_of):
    request = EditRequest.strict(catalog_of, MODEL, 9, 12, "mouth", "simultaneous", 3.5, 2.5, 0.8, 0.2)
    query = dict(urllib.parse.parse_qsl(request.to_query()))
    assert query == dict(model=MODEL, target="9", reference="12", part="mouth", method="simultaneous",
                         epsilon="3.5", lam="2.5", psi="0.8", threshold="0.2")
    assert EditRequest.lenient(catalog_of, query, MODEL) == (request, [])


def test_lenient_falls_back_field_by_field_with_notes(catalog_of, catalog):
    query = dict(model=MODEL, target="-4", reference="7", part="tail", method="sequential", epsilon="nan",
                 psi="9", threshold="0.2")
    request, notes = EditRequest.lenient(catalog_of, query, MODEL, lambda model: dict(target=3, part="mouth"))
    assert (request.target, request.reference, request.part) == (3, 7, "mouth")
    assert request.epsilon == catalog.epsilon["default"] and request.psi == 2.0 and request.threshold == 0.2
    assert len(notes) == 4
    assert any("target seed must be a whole number" in n and n.endswith("using 3.") for n in notes)
    assert any("part must be one of" in n and "got 'tail'; using mouth." in n for n in notes)
    assert any("truncation ψ 9 is outside 0 to 2; using 2." == n for n in notes)


def test_the_examples_epsilon_goes_with_its_part_and_another_part_starts_at_its_own(catalog_of, catalog):
    example = dict(target=3, reference=4, part="mouth", epsilon=9.9)
    assert catalog.default_epsilon("hair") not in (catalog.epsilon["default"], 9.9)  # hair has a default of its own
    linked, notes = EditRequest.lenient(catalog_of, dict(part="hair"), MODEL, lambda model: example)
    assert notes == [] and (linked.target, linked.part, linked.epsilon) == (3, "hair", catalog.default_epsilon("hair"))
    opened, _ = EditRequest.lenient(catalog_of, {}, MODEL, lambda model: example)
    assert (opened.part, opened.epsilon) == ("mouth", 9.9)
    same_part, _ = EditRequest.lenient(catalog_of, dict(part="mouth", target="50"), MODEL, lambda model: example)
    assert (same_part.target, same_part.epsilon) == (50, 9.9)


def test_lenient_clamps_numbers_into_the_catalogs_range(catalog_of, catalog):
    request, notes = EditRequest.lenient(catalog_of, dict(epsilon="500", lam="-1", method="simultaneous"), MODEL)
    assert request.epsilon == catalog.epsilon["max"] and request.lam == 0.0 and len(notes) == 2


def test_lenient_replaces_a_model_it_cannot_use(catalog_of):
    request, notes = EditRequest.lenient(catalog_of, dict(model="stylegan-ffhq", target="5", part="wheels"), MODEL)
    assert request.model == MODEL and request.target == 0 and request.part in ("eyes",)
    assert notes == ["The model 'stylegan-ffhq' is not available on this server; showing cartoon-faces."]
    _, notes = EditRequest.lenient(catalog_of, dict(model="<b>x</b>"), MODEL)
    assert notes[0].startswith("model must be one of") and "'<b>x</b>'" in notes[0]


def test_an_empty_query_gives_the_models_defaults(catalog_of):
    request, notes = EditRequest.lenient(catalog_of, {}, MODEL)
    assert notes == [] and request.method == "sequential" and request.part == "eyes"


def test_file_stem_and_description_are_plain(catalog_of):
    request = EditRequest.strict(catalog_of, MODEL, 9, 12, "eyes", epsilon=6.3)
    assert request.file_stem() == "cartoon-faces_t9_r12_eyes_sequential_eps6.3"
    assert request.describe() == "eyes of seed 12 moved onto seed 9"
    glob = EditRequest.strict(catalog_of, MODEL, 9, 12, "eyes", "global", lam=0.5)
    assert glob.file_stem().endswith("_global_lam0.5") and "everywhere" in glob.describe()


def test_grid_requests_are_bounded(catalog_of):
    grid = GridRequest.strict(catalog_of, MODEL, 9, ["1", 2], ["eyes", "mouth", "eyes"])
    assert grid.references == (1, 2) and grid.parts == ("eyes", "mouth")
    with pytest.raises(RequestError, match="a grid takes 1 to 4 references; got 5"):
        GridRequest.strict(catalog_of, MODEL, 9, [1, 2, 3, 4, 5], ["eyes"])
    with pytest.raises(RequestError, match="a grid takes 1 to 6 parts; got 1000"):
        GridRequest.strict(catalog_of, MODEL, 9, [1], ["eyes"] * 1000)
    with pytest.raises(RequestError, match="a grid takes 1 to 6 parts; got 0"):
        GridRequest.strict(catalog_of, MODEL, 9, [1], [])
    with pytest.raises(RequestError, match="part must be one of"):
        GridRequest.strict(catalog_of, MODEL, 9, [1], ["eyes", "tail"])

