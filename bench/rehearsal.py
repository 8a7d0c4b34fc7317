"""A full-size rehearsal of deploying the four official models, without NVIDIA's weights.

Writes official-format pickles at the real sizes (random weights, NVIDIA's variable names and kwargs, by the
tests' writer) into a scratch GANEDIT_WEIGHTS_DIR, then for each model, each step in a process of its own:
``python -m ganedit prepare`` (conversion, catalog at N images and k clusters, contact sheet), and an
EditService that loads the result and times the first edit (two seeds prepared) and later edits (ε moves).
Prints wall time and peak memory of every step, and the catalog time per image, so a larger N can be
extrapolated. Finally, with --serving, starts the app with one official model not yet prepared and measures
bundled-model edits of another visitor while that model's first-use catalog builds.

    python bench/rehearsal.py [--models stylegan2-cats …] [--n-images 200] [--k 16] [--serving]
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from official_files import write_official_pickle  # noqa: E402

import ganedit  # noqa: E402

FULL_SIZE = {
    "stylegan": dict(latent_size=512, dlatent_size=512, mapping_fmaps=512, fmap_base=8192, fmap_max=512),
    "stylegan2": dict(latent_size=512, dlatent_size=512, mapping_fmaps=512, fmap_base=16384, fmap_max=512),
}
EDIT_SCRIPT = """
import time, ganedit
service = ganedit.EditService(device="cpu")
t = time.perf_counter(); service.model("{model}"); loaded = time.perf_counter() - t
catalog = service.catalog("{model}")
request = lambda eps: ganedit.EditRequest.strict(service.catalog, "{model}", 1, 2, catalog.parts[0], epsilon=eps)
t = time.perf_counter(); service.edit(request(catalog.epsilon["default"])); first = time.perf_counter() - t
later = []
for i in range(3):
    t = time.perf_counter(); service.edit(request(catalog.epsilon["max"] * (i + 1) / 4)); later.append(time.perf_counter() - t)
print(f"load {{loaded:.1f}} s, first edit {{first:.2f}} s, later edits {{sorted(later)[1]:.2f}} s (median of 3)")
"""


def run(command, env):
    """(seconds, peak resident MB, last output line) of a child process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{output[-3000:]}")
    lines = [line for line in output.splitlines() if line.strip()]
    return time.perf_counter() - start, usage.ru_maxrss / 1024, lines[-1] if lines else ""


def rehearse(model, n_images, k, scratch, env):
    info = ganedit.MODELS[model]
    pickle = scratch / "weights" / info.official_file
    t = time.perf_counter()
    write_official_pickle(pickle, info.kind, info.resolution, **FULL_SIZE[info.kind])
    print(f"{model}: wrote a {pickle.stat().st_size / 2**20:.0f} MB official-format pickle in "
          f"{time.perf_counter() - t:.0f} s", flush=True)
    seconds, peak, _ = run([sys.executable, "-m", "ganedit", "prepare", model, "--n-images", str(n_images),
                            "--k", str(k), "--out", str(scratch / "catalogs")], env)
    print(f"  prepare (convert, catalog of {n_images} images with k={k}, contact sheet): {seconds:.0f} s "
          f"({seconds / n_images:.2f} s per catalog image), peak {peak:.0f} MB", flush=True)
    seconds, peak, line = run([sys.executable, "-c", EDIT_SCRIPT.format(model=model)], env)
    print(f"  app-side: {line}; peak {peak:.0f} MB", flush=True)


def serving_while_building(model, scratch, env):
    """Bundled-model edits of one visitor, before and while another visitor's first use builds ``model``."""
    from app_server import running_app
    from gradio_client import Client
    from playwright.sync_api import sync_playwright

    with running_app(scratch / "app", env={**env, "GANEDIT_CATALOG_DIR": ""}) as server:
        visitor = Client(server.url, verbose=False, download_files=scratch / "downloads")

        def edits(n):
            times = []
            for i in range(n):
                t = time.perf_counter()
                visitor.predict("cartoon-faces", 3, 7, "eyes", "sequential", 1.0 + i % 10, api_name="/edit")
                times.append(time.perf_counter() - t)
            return times

        quiet = edits(20)
        busy, progress, screenshots = [], [], []
        with sync_playwright() as playwright:  # the first visitor: picks the model on the page, as a person does
            browser = playwright.chromium.launch(executable_path=CHROMIUM)
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.goto(server.url)
            page.wait_for_selector("#result-image img", timeout=60_000)
            page.locator("#model input").click()
            page.get_by_role("option", name=ganedit.MODELS[model].title, exact=False).first.click()
            start = time.perf_counter()
            while time.perf_counter() - start < 3600:
                busy += edits(3)
                text = page.locator(".progress-text, .progress-level-inner").all_inner_texts()
                seen = " | ".join(dict.fromkeys(t.strip() for t in text if t.strip()))
                if seen and (not progress or progress[-1][1] != seen):
                    progress.append((round(time.perf_counter() - start), seen))
                    if not screenshots and time.perf_counter() - start > 20:
                        screenshots.append(scratch / "screenshot-first-use.png")
                        page.screenshot(path=screenshots[0])
                if f"model={model}" in page.evaluate("location.search"):
                    break
            first_use = f"{time.perf_counter() - start:.0f} s"
            errors = page.locator(".toast-body.error").all_inner_texts()
            browser.close()
        if errors:
            first_use += f", errors shown: {errors}"
        for path in screenshots:
            shutil.copy(path, ROOT / "docs" / path.name)

        def ms(times):
            return f"median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms"

        print(f"serving while {model} builds its first-use catalog: bundled edits {ms(quiet)} before, "
              f"{ms(busy) if busy else 'none'} during ({len(busy)} edits); the first use took {first_use}", flush=True)
        print("progress the first visitor saw (s: message):", "; ".join(f"{t}: {m}" for t, m in progress), flush=True)
        print("screenshots:", ", ".join(f"docs/{p.name}" for p in screenshots) or "none", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=["stylegan-bedrooms", "stylegan2-cats", "stylegan2-cars",
                                                         "stylegan-ffhq"])
    parser.add_argument("--n-images", type=int, default=200)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--serving", metavar="MODEL", help="also measure serving while MODEL builds on first use")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ganedit-rehearsal-") as folder:
        scratch = Path(folder)
        (scratch / "weights").mkdir()
        env = {**os.environ, "GANEDIT_WEIGHTS_DIR": str(scratch / "weights"), "GANEDIT_CACHE": str(scratch / "cache"),
               "GANEDIT_CATALOG_DIR": str(scratch / "catalogs"), "GANEDIT_OFFLINE": "1",
               "PYTHONPATH": str(ROOT)}
        print(f"{os.cpu_count()} cores, torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}", flush=True)
        for model in args.models:
            rehearse(model, args.n_images, args.k, scratch, env)
        if args.serving:
            info = ganedit.MODELS[args.serving]
            if not (scratch / "weights" / info.official_file).exists():
                write_official_pickle(scratch / "weights" / info.official_file, info.kind, info.resolution,
                                      **FULL_SIZE[info.kind])
            serving_while_building(args.serving, scratch, env)
    print(f"this process peaked at {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
