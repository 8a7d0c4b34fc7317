"""The web app in headless Chromium (Playwright), as a visitor meets it: first result, controls in step with the
picture, share links (crafted ones too), examples, the reference strip, and an accessibility check (axe-core)."""

import io
import json
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
from app_server import running_app
from PIL import Image

import ganedit

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); the browser tests need it",
                allow_module_level=True)

from axe_playwright_python.sync_playwright import Axe  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

MODEL = "cartoon-faces"  # the small bundled model: the tests that name their model use it, it is the fastest
FIRST_EXAMPLE = json.loads((Path(__file__).resolve().parent.parent / "examples" / "examples.json").read_text())[0]
PART = "eyes"
TIMEOUT_MS = 30_000
MARKUP = '# Space moved\n[click here](http://evil.example/a) <img src="http://evil.example/x.png"> <h1>moved</h1> **b**'


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()


def open_app(page, url):
    """Open the page and wait for its first edit: the result picture and the share link it sets."""
    page.goto(url)
    page.wait_for_selector("#result-image img")
    page.wait_for_function("() => (document.querySelector('#share-link textarea') || {}).value")
    return page


def result_src(page):
    return page.locator("#result-image img").get_attribute("src")


def wait_for_new_result(page, before):
    page.wait_for_function("(s) => document.querySelector('#result-image img').src !== s", arg=before)


def picture(page, element_id):
    src = page.locator(f"#{element_id} img").get_attribute("src")
    return np.asarray(Image.open(io.BytesIO(page.request.get(src).body())).convert("RGB"))


def share_link(page):
    return page.locator("#share-link textarea").input_value()


def query_of(url):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlparse(url).query))


def epsilon_box(page):
    return page.locator("#epsilon input[type=number]")


def test_the_slider_moves_the_picture_and_the_address_follows(page, app_url):
    open_app(page, app_url)
    shown = query_of(page.url)
    assert shown == query_of(share_link(page))
    assert {key: shown[key] for key in ("model", "target", "reference", "part")} == {
        key: str(FIRST_EXAMPLE[key]) for key in ("model", "target", "reference", "part")}  # the page opens on it
    assert "In-MSE" in page.locator("#metrics").inner_text()
    before, epsilon_before = result_src(page), float(epsilon_box(page).input_value())
    page.locator("#epsilon input[type=range]").focus()
    for _ in range(10):  # ten key presses move ε by 1.0
        page.keyboard.press("ArrowLeft")
    wait_for_new_result(page, before)
    page.wait_for_function("(e) => location.search.includes('epsilon=' + e + '&')",
                           arg=f"{epsilon_before - 1.0:g}")
    assert float(epsilon_box(page).input_value()) == pytest.approx(epsilon_before - 1.0)
    # the address restores the edit: a reload shows the same picture
    shown = picture(page, "result-image")
    open_app(page, page.url)
    assert float(epsilon_box(page).input_value()) == pytest.approx(epsilon_before - 1.0)
    assert np.array_equal(picture(page, "result-image"), shown)


def test_reset_puts_the_default_back_and_redoes_the_edit(page, app_url):
    open_app(page, app_url)
    default = float(epsilon_box(page).input_value())
    before = result_src(page)
    epsilon_box(page).fill("0")
    epsilon_box(page).press("Enter")
    wait_for_new_result(page, before)
    assert np.array_equal(picture(page, "result-image"), picture(page, "target-image"))  # ε = 0 moves nothing
    metrics = page.locator("#metrics").inner_text()
    assert "0 style channels moved" in metrics and "nothing moved: at ε 0 the sequential query" in metrics
    before = result_src(page)
    page.locator("#reset").click()
    wait_for_new_result(page, before)
    assert float(epsilon_box(page).input_value()) == pytest.approx(default)
    assert "nothing moved" not in page.locator("#metrics").inner_text()
    assert not np.array_equal(picture(page, "result-image"), picture(page, "target-image"))
    assert f"epsilon={default:g}&" in page.url


def test_a_share_link_restores_its_edit(page, app_url):
    catalog = ganedit.load_catalog(MODEL)
    params = dict(model=MODEL, target=5, reference=11, part=PART, method="sequential", epsilon=3.2)
    open_app(page, f"{app_url}?{urllib.parse.urlencode(params)}")
    page.wait_for_function("() => document.querySelector('#share-link textarea').value.includes('target=5&')")
    assert page.locator("#target input").input_value() == "5"
    assert page.locator("#reference input").input_value() == "11"
    assert page.locator("#part input").input_value() == PART
    assert float(epsilon_box(page).input_value()) == pytest.approx(3.2)
    assert not page.locator("#note").is_visible()
    expected = ganedit.edit(ganedit.load_generator(MODEL), catalog, 5, 11, PART, "sequential", 3.2)
    shown = picture(page, "result-image")
    assert np.abs(shown.astype(int) - ganedit.enlarge(expected.result).astype(int)).max() <= 1
    assert page.locator("#result-image img").get_attribute("alt") == "result: eyes of seed 11 moved onto seed 5"


def test_a_part_name_reads_as_words_and_links_keep_the_name(page, app_url):
    model = "cartoon-faces-128"  # its renderer's part 'facial_hair'
    assert "facial_hair" in ganedit.load_catalog(model).parts
    open_app(page, f"{app_url}?model={model}&target=5&reference=11&part=eyes")
    page.locator("#part input").click()
    page.get_by_role("option", name="facial hair", exact=True).click()
    page.wait_for_function("() => location.search.includes('part=facial_hair&')")
    assert page.locator("#part input").input_value() == "facial hair"
    assert "facial_hair" not in page.locator("#part").inner_text()


def test_a_bad_share_link_falls_back_with_a_plain_note(page, app_url):
    open_app(page, f"{app_url}?model={MODEL}&target=-4&part=tail&epsilon=nan")
    note = page.locator("#note textarea").input_value()
    for words in ("target seed must be a whole number", "part must be one of", "got 'tail'", "ε must be a number"):
        assert words in note
    assert "In-MSE" in page.locator("#metrics").inner_text()


def test_crafted_links_put_no_markup_on_the_page_and_fetch_nothing_outside(page, app_url):
    outside = []
    page.on("request", lambda r: outside.append(r.url) if urllib.parse.urlparse(r.url).hostname not in
            ("127.0.0.1", "localhost") and not r.url.startswith("data:") else None)
    for field in ganedit.REQUEST_FIELDS:
        open_app(page, f"{app_url}?{urllib.parse.urlencode({field: MARKUP})}")
        if field == "model":
            assert "model must be one of" in page.locator("#note textarea").input_value()
        assert page.locator("h1:has-text('moved'), h1:has-text('Space moved')").count() == 0
        assert page.locator("a[href*='evil.example'], img[src*='evil.example']").count() == 0
        assert page.locator("strong:text-is('b')").count() == 0
    assert outside == []


def test_every_example_shows_four_pictures_and_no_error(page, app_url):
    open_app(page, app_url)
    rows = json.loads((Path(__file__).resolve().parent.parent / "examples" / "examples.json").read_text())
    examples = page.locator("#examples button.gallery-item")
    assert examples.count() == len(rows) >= 3
    for i, row in enumerate(rows):
        examples.nth(i).click()
        page.wait_for_function("(q) => location.search.includes(q)",
                               arg=f"target={row['target']}&reference={row['reference']}&part={row['part']}&")
        for panel in ("target-image", "reference-image", "result-image", "difference-image"):
            assert page.locator(f"#{panel} img").count() == 1
        assert page.locator(".toast-body.error").count() == 0
        assert page.locator("#model input").input_value().startswith("Cartoon faces")


def test_the_last_example_clicked_wins(page, app_url):
    # a second click while the first example was still being edited used to be dropped: the page stayed on the first
    open_app(page, app_url)
    rows = json.loads((Path(__file__).resolve().parent.parent / "examples" / "examples.json").read_text())
    others = [i for i, row in enumerate(rows) if i > 0 and row["model"] == rows[0]["model"]
              and row["part"] != rows[0]["part"]]
    assert len(others) >= 2, "needs two more examples of the first example's model"
    last = rows[others[-1]]
    examples = page.locator("#examples button.gallery-item")
    examples.nth(others[0]).click()
    examples.nth(others[-1]).click()
    page.wait_for_function("(q) => location.search.includes(q)",
                           arg=f"target={last['target']}&reference={last['reference']}&part={last['part']}&")
    assert page.locator("#target input").input_value() == str(last["target"])


def test_an_unavailable_model_leaves_the_page_as_it_was(page, app_url):
    open_app(page, f"{app_url}?model={MODEL}&target=4&reference=8&part=mouth")
    page.locator("#model input").click()
    page.get_by_role("option", name="StyleGAN2 LSUN Cats 256px · not available on this server").click()
    page.wait_for_selector(".toast-body")
    assert "stylegan2-cats is not available" in page.locator(".toast-body").first.inner_text()
    page.wait_for_function("() => document.querySelector('#model input').value.startsWith('Cartoon faces')")
    assert page.locator("#target input").input_value() == "4" and page.locator("#part input").input_value() == "mouth"


def test_global_says_it_ignores_the_part(page, app_url):
    open_app(page, app_url)
    before = result_src(page)
    page.locator("#method label:has-text('global')").click()
    wait_for_new_result(page, before)
    assert page.locator("#global-note").is_visible() and page.locator("#part input").is_disabled()
    assert "method=global" in page.url


def test_a_candidate_reference_is_one_click_away(page, app_url):
    open_app(page, app_url)
    page.wait_for_selector("#candidates img")
    before = result_src(page)
    caption = page.locator("#candidates .caption-label").nth(2).inner_text()
    page.locator("#candidates button.thumbnail-item").nth(2).click()
    wait_for_new_result(page, before)
    assert f"seed {page.locator('#reference input').input_value()}" == caption


def test_overlay_names_the_parts(page, app_url):
    open_app(page, app_url)
    plain = picture(page, "target-image")
    src = page.locator("#target-image img").get_attribute("src")
    page.locator("#overlay input").check()
    page.wait_for_function("(s) => document.querySelector('#target-image img').src !== s", arg=src)
    assert not np.array_equal(picture(page, "target-image"), plain)
    legend = page.locator("#legend").inner_text()
    assert "Overlay" in legend and "eyes" in legend and "mouth" in legend


def test_first_screen_and_accessibility(page, app_url):
    open_app(page, app_url)
    for element in ("#target-image img", "#reference-image img", "#result-image img", "#difference-image img",
                    "#epsilon input[type=range]", "#edit"):
        box = page.locator(element).bounding_box()
        assert box and box["y"] + box["height"] <= 768, f"{element} is below the fold at 1366x768"
    results = Axe().run(page)
    serious = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in serious]


def test_no_dropdown_writes_its_choice_under_its_arrow(browser, app_url):
    for viewport in ({"width": 1366, "height": 768}, {"width": 390, "height": 844}):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        open_app(page, app_url)
        for dropdown in ("#model", "#part"):
            text_end, arrow_start, overflow = page.locator(dropdown).evaluate("""block => {
                const input = block.querySelector('input'), style = getComputedStyle(input);
                return [input.getBoundingClientRect().right - parseFloat(style.paddingRight),
                        block.querySelector('.icon-wrap').getBoundingClientRect().left, style.textOverflow]; }""")
            assert text_end <= arrow_start and overflow == "ellipsis", (viewport, dropdown, text_end, arrow_start)
        context.close()


def test_on_a_phone_the_result_is_within_one_and_a_half_screens(browser, app_url):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    open_app(page, app_url)
    box = page.locator("#result-image img").bounding_box()
    assert box["y"] < 1.6 * 844 and box["width"] >= 140, box
    context.close()


def test_clicking_a_picture_picks_its_clusters_as_the_part(page, app_url):
    open_app(page, f"{app_url}?model={MODEL}&target=9&reference=12&part=eyes")
    G, catalog = ganedit.load_generator(MODEL), ganedit.load_catalog(MODEL)
    cluster_map = ganedit.prepare_seed(G, catalog, 9).cluster_map.numpy()
    rows, cols = cluster_map.shape
    page.wait_for_selector("#candidates img")  # the page has settled: nothing moves the picture any more
    box = page.locator("#target-image img").bounding_box()

    def click(cluster):
        row, col = np.argwhere(cluster_map == cluster)[0]
        page.wait_for_function("() => { const i = document.querySelector('#target-image img');"
                               " return i && i.complete && i.naturalWidth > 0; }")  # the picture shown is loaded
        page.mouse.click(box["x"] + (col + 0.5) * box["width"] / cols, box["y"] + (row + 0.5) * box["height"] / rows)

    first, second = catalog.part_clusters("eyes")[:2]
    click(first)  # the first click picks one cluster
    page.wait_for_function("(q) => location.search.includes(q)", arg=f"part=clusters%3A{first}&")
    assert page.locator("#overlay input").is_checked()
    click(second)  # later clicks add ...
    page.wait_for_function("(q) => location.search.includes(q)",
                           arg=f"part=clusters%3A{min(first, second)}%2C{max(first, second)}&")
    click(first)  # ... or take away
    page.wait_for_function("(q) => location.search.includes(q)", arg=f"part=clusters%3A{second}&")
    assert page.locator("#part input").input_value() == f"clusters:{second}"
    assert page.locator("#label-name").count() == 0  # labelling is off unless the server's owner turns it on


def test_labelling_mode_names_a_selection_and_saves_it(browser, tmp_path):
    catalogs = tmp_path / "catalogs"
    ganedit.load_catalog(MODEL).save(catalogs / MODEL)
    env = {"GANEDIT_LABELLING": "1", "GANEDIT_CATALOG_DIR": str(catalogs)}
    with running_app(tmp_path / "app", env=env) as server:
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        open_app(page, f"{server.url}?model={MODEL}&part=clusters:10,12")
        page.locator("#label-name textarea").fill("eyes and mouth")
        page.locator("#label-set").click()
        page.wait_for_function("() => location.search.includes('part=eyes%20and%20mouth&')")
        saved = ganedit.load_catalog(catalogs / MODEL)
        assert saved.part_clusters("eyes and mouth") == [10, 12]
        assert 10 not in saved.part_clusters("eyes") and 12 not in saved.part_clusters("mouth")
        page.close()


def test_a_part_with_its_own_default_starts_there(browser, tmp_path):
    catalogs = tmp_path / "catalogs"
    catalog = ganedit.load_catalog(MODEL)
    mouth = round(min(1.5 * catalog.epsilon["default"], catalog.epsilon["max"]), 1)
    catalog.set_default_epsilon("mouth", mouth)
    catalog.save(catalogs / MODEL)
    with running_app(tmp_path / "app", env={"GANEDIT_CATALOG_DIR": str(catalogs)}) as server:
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        open_app(page, f"{server.url}?model={MODEL}&part=eyes&epsilon=2")
        page.locator("#part input").click()
        page.get_by_role("option", name="mouth", exact=True).click()
        page.wait_for_function("(e) => location.search.includes('part=mouth&') && location.search.includes(e)",
                               arg=f"epsilon={mouth:g}&")
        assert float(epsilon_box(page).input_value()) == pytest.approx(mouth)
        page.locator("#epsilon input[type=range]").focus()
        page.keyboard.press("ArrowLeft")  # the visitor's own value stands until they pick a part again
        page.wait_for_function("(e) => location.search.includes(e)", arg=f"epsilon={mouth - 0.1:g}&")
        page.locator("#reset").click()
        page.wait_for_function("(e) => location.search.includes(e)", arg=f"epsilon={mouth:g}&")
        page.close()
