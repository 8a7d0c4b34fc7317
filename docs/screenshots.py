"""Take README's screenshots of the real app in headless Chromium: docs/screenshot.png (desktop, 1366x768, the
page as a visitor first sees it), docs/screenshot-phone.png (390x844) and docs/screenshot-click.png (the first
example's target, a part picked by clicking clusters on it, parts overlay on).

    python docs/screenshots.py [--out docs]

Needs /usr/bin/chromium and the test dependencies (playwright); the app runs offline from a scratch folder.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import ganedit  # noqa: E402
from app_server import running_app  # noqa: E402

DESKTOP, PHONE = {"width": 1366, "height": 768}, {"width": 390, "height": 844}


def settled(page, url):
    """Open ``url`` and wait until the first edit and the reference strip are shown."""
    page.goto(url)
    page.wait_for_selector("#result-image img")
    page.wait_for_function("() => (document.querySelector('#share-link textarea') || {}).value")
    page.wait_for_selector("#candidates img")
    page.wait_for_timeout(500)  # let images finish painting


def click_part(page, example):
    """Click the target as a visitor would, on what shows most: the three largest clusters of the example's part and
    the largest of the mouth, one pixel of each (the first click also turns the parts overlay on). Returns the
    clusters clicked."""
    G, catalog = ganedit.load_generator(example["model"]), ganedit.load_catalog(example["model"])
    cluster_map = ganedit.prepare_seed(G, catalog, example["target"]).cluster_map.numpy()
    rows, cols = cluster_map.shape
    box = page.locator("#target-image img").bounding_box()
    side = min(box["width"], box["height"])  # the picture is square, fitted ("contain") into the element's box
    left, top = box["x"] + (box["width"] - side) / 2, box["y"] + (box["height"] - side) / 2
    def shown(part, count):
        return sorted(catalog.part_clusters(part), key=lambda c: (cluster_map == c).sum(), reverse=True)[:count]

    chosen = shown(example["part"], 3) + shown("mouth", 1)
    for cluster in chosen:
        pixels = np.argwhere(cluster_map == cluster)
        row, col = pixels[len(pixels) // 2]
        page.wait_for_function("() => { const i = document.querySelector('#target-image img');"
                               " return i && i.complete && i.naturalWidth > 0; }")
        before = page.url
        page.mouse.click(left + (col + 0.5) * side / cols, top + (row + 0.5) * side / rows)
        page.wait_for_function("(u) => location.href !== u", arg=before)  # the part in the address changes
    page.wait_for_selector("#result-image img")
    page.wait_for_timeout(1500)  # let the last edit's pictures arrive and paint
    return chosen


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs"))
    args = parser.parse_args()
    out = Path(args.out)
    example = json.loads((ROOT / "examples" / "examples.json").read_text())[0]
    with tempfile.TemporaryDirectory() as scratch, running_app(scratch) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=["--no-sandbox", "--disable-gpu"])
        for viewport, name in ((DESKTOP, "screenshot.png"), (PHONE, "screenshot-phone.png")):
            page = browser.new_context(viewport=viewport).new_page()
            settled(page, server.url)
            page.screenshot(path=out / name)
            print(f"wrote {out / name}")
        page = browser.new_context(viewport=DESKTOP).new_page()
        settled(page, f"{server.url}?model={example['model']}&target={example['target']}"
                      f"&reference={example['reference']}&part={example['part']}")
        chosen = click_part(page, example)
        page.screenshot(path=out / "screenshot-click.png")
        print(f"wrote {out / 'screenshot-click.png'}: clusters {chosen} of target {example['target']}")
        browser.close()


if __name__ == "__main__":
    main()
