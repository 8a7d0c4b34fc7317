"""The web app in headless Chromium (Playwright): first result, the ε slider, share links."""

import io
import json
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ganedit

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); the browser tests need it",
                allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402

MODEL = "cartoon-faces"
PART = "eyes"  # the bundled catalog names at least "eyes" and "mouth"
TIMEOUT_MS = 30_000


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
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
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


def picture(page, element_id):
    src = page.locator(f"#{element_id} img").get_attribute("src")
    return np.asarray(Image.open(io.BytesIO(page.request.get(src).body())).convert("RGB"))


def share_link(page):
    return page.locator("#share-link textarea").input_value()


def test_first_result_then_the_epsilon_slider_changes_it(page, app_url):
    open_app(page, app_url)
    query = urllib.parse.parse_qs(urllib.parse.urlparse(share_link(page)).query)
    assert query["model"] == [MODEL] and set(query) >= {"target", "reference", "part", "method", "epsilon", "lam", "psi"}
    assert "In-MSE" in page.locator("#metrics").inner_text()
    before, epsilon_before = result_src(page), page.locator("#epsilon input[type=number]").input_value()
    slider = page.locator("#epsilon input[type=range]")
    slider.focus()
    for _ in range(60):
        page.keyboard.press("ArrowLeft")
    page.wait_for_function("(s) => document.querySelector('#result-image img').src !== s", arg=before)
    epsilon_after = page.locator("#epsilon input[type=number]").input_value()
    assert float(epsilon_after) < float(epsilon_before)
    page.wait_for_function(
        "(e) => document.querySelector('#share-link textarea').value.includes('epsilon=' + e)",
        arg=f"{float(epsilon_after):g}")
    # typing into the slider's number box re-renders too
    before = result_src(page)
    box = page.locator("#epsilon input[type=number]")
    box.fill("0")
    box.press("Enter")
    page.wait_for_function("(s) => document.querySelector('#result-image img').src !== s", arg=before)
    # ε = 0 moves nothing: the result is the target
    assert np.array_equal(picture(page, "result-image"), picture(page, "target-image"))


def test_a_share_link_restores_and_runs_its_edit(page, app_url):
    catalog = ganedit.load_catalog(MODEL)
    epsilon = round(catalog.epsilon["default"] / 2, 2)
    params = dict(model=MODEL, target=5, reference=11, part=PART, method="sequential", epsilon=epsilon)
    open_app(page, f"{app_url}?{urllib.parse.urlencode(params)}")
    page.wait_for_function("() => document.querySelector('#share-link textarea').value.includes('target=5')")
    assert page.locator("#target input").input_value() == "5"
    assert page.locator("#reference input").input_value() == "11"
    assert page.locator("#part input").input_value() == PART
    assert float(page.locator("#epsilon input[type=number]").input_value()) == pytest.approx(epsilon)
    assert page.locator("#note").inner_text().strip() == ""
    # the picture is the library's edit for the same inputs, enlarged for display
    G = ganedit.load_generator(MODEL)
    expected = ganedit.edit(G, catalog, 5, 11, PART, "sequential", epsilon)
    shown = picture(page, "result-image")
    assert shown.shape == ganedit.enlarge(expected.result).shape
    assert np.abs(shown.astype(int) - ganedit.enlarge(expected.result).astype(int)).max() <= 1
    # and the link the page offers for it opens the same edit
    link = share_link(page)
    assert link.startswith(app_url) and f"part={PART}" in link
    before = picture(page, "result-image")
    open_app(page, link)
    assert np.array_equal(picture(page, "result-image"), before)


def test_a_bad_share_link_falls_back_with_a_note(page, app_url):
    open_app(page, f"{app_url}?model=no-such-model&target=-4&part=tail&epsilon=nan")
    page.wait_for_function("() => document.querySelector('#note').innerText.includes('unknown model')")
    note = page.locator("#note").inner_text()
    for words in ("unknown model 'no-such-model'", "target seed", "no part 'tail'", "ε (epsilon)"):
        assert words in note
    page.wait_for_function("() => document.querySelector('#share-link textarea').value.includes('target=')")
    assert f"model={MODEL}&" in share_link(page)
    assert "In-MSE" in page.locator("#metrics").inner_text()


def test_dice_draws_a_seed_and_the_overlay_shows_the_clusters(page, app_url):
    open_app(page, app_url)
    seed_before = page.locator("#target input").input_value()
    target_before = picture(page, "target-image")
    src = page.locator("#target-image img").get_attribute("src")
    page.locator("#target-dice").click()
    page.wait_for_function("(s) => document.querySelector('#target-image img').src !== s", arg=src)
    seed = int(page.locator("#target input").input_value())
    assert 0 <= seed <= ganedit.MAX_SEED and str(seed) != seed_before
    page.wait_for_function("(s) => document.querySelector('#share-link textarea').value.includes('target=' + s + '&')",
                           arg=str(seed))
    # the overlay tints target and reference with the catalog's cluster colours, and unticking brings them back
    plain = picture(page, "target-image")
    assert not np.array_equal(plain, target_before)
    src = page.locator("#target-image img").get_attribute("src")
    page.locator("#overlay input").check()
    page.wait_for_function("(s) => document.querySelector('#target-image img').src !== s", arg=src)
    tinted = picture(page, "target-image")
    assert tinted.shape == plain.shape and not np.array_equal(tinted, plain)
    src = page.locator("#target-image img").get_attribute("src")
    page.locator("#overlay input").uncheck()
    page.wait_for_function("(s) => document.querySelector('#target-image img').src !== s", arg=src)
    assert np.array_equal(picture(page, "target-image"), plain)


def test_examples_load_their_edit_or_explain_why_not(page, app_url):
    rows = json.loads((Path(__file__).resolve().parent.parent / "examples" / "examples.json").read_text())
    mine = next(row for row in rows if row["model"] == MODEL)
    other = next(row for row in rows if row["model"] != MODEL)  # the test server is offline, without weights
    open_app(page, f"{app_url}?model={MODEL}&target=1&reference=2&part={PART}&method=sequential")
    page.get_by_text(f"{MODEL}: {mine['part']} of {mine['reference']} onto {mine['target']}").click()
    expected = f"model={MODEL}&target={mine['target']}&reference={mine['reference']}&part={mine['part']}&"
    page.wait_for_function("(q) => document.querySelector('#share-link textarea').value.includes(q)", arg=expected)
    assert page.locator("#target input").input_value() == str(mine["target"])
    assert page.locator("#part input").input_value() == mine["part"]
    # offline, an official model's example says why it can't run and shows the bundled model instead
    page.get_by_text(f"{other['model']}: {other['part']} of {other['reference']} onto {other['target']}").click()
    page.wait_for_function("(m) => document.querySelector('#note').innerText.includes(m)",
                           arg=f"{other['model']} is not available here")
    page.wait_for_function("(q) => document.querySelector('#share-link textarea').value.includes(q)",
                           arg=f"model={MODEL}&target={other['target']}&")
    assert "In-MSE" in page.locator("#metrics").inner_text()
