"""The web app under load, through its HTTP API on localhost (the real server: python app.py, offline).

1. start-up: from launching the server process to the first successful /edit;
2. slider round trip: median ms of /edit calls on a bundled model (--model; default the app's) that vary only ε
   (fixed seeds, after a warm-up), beside the same edits called in this process on ganedit.EditService (the
   baseline; ratio printed);
3. soak: N edits from 8 concurrent gradio_client clients, counting failures, with the server's resident memory
   (VmRSS from /proc/<pid>/status) before and after.

    python bench/bench_app.py [--model NAME] [--calls 30] [--soak 2000] [--clients 8] [--soak-timeout 900]
"""

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
import ganedit  # noqa: E402
from app_server import running_app  # noqa: E402

TARGET, REFERENCE = 3, 7


def rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def epsilons(catalog, n):
    low, high = catalog.epsilon["min"], catalog.epsilon["max"]
    return [round(low + (high - low) * i / max(n - 1, 1), 3) for i in range(n)]


def part_of(catalog):
    return "eyes" if "eyes" in catalog.parts else catalog.parts[0]


def raw_edit(http, data):
    """/edit through Gradio's plain HTTP API (POST, then the result stream), then the four pictures' downloads."""
    event = http.post("gradio_api/call/edit", json={"data": data}).raise_for_status().json()["event_id"]
    stream = http.get(f"gradio_api/call/edit/{event}").raise_for_status().text
    if "event: complete" not in stream:
        raise RuntimeError(f"/edit failed: {stream[:300]}")
    files = json.loads(stream.split("event: complete", 1)[1].split("data:", 1)[1].strip().splitlines()[0])
    return [http.get(f["url"]).raise_for_status().content for f in files]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=ganedit.BUNDLED_MODELS, default=ganedit.BUNDLED_MODELS[0],
                        help="a bundled model (default: the one the app opens on)")
    parser.add_argument("--calls", type=int, default=30, help="timed /edit calls for the slider round trip")
    parser.add_argument("--soak", type=int, default=2000, help="edits in the soak run (0 skips it)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients in the soak run")
    parser.add_argument("--soak-timeout", type=float, default=900, help="stop submitting soak edits after this (s)")
    args = parser.parse_args()
    model = args.model

    from gradio_client import Client

    catalog = ganedit.load_catalog(model)
    part = part_of(catalog)
    values = epsilons(catalog, args.calls)

    with tempfile.TemporaryDirectory(prefix="ganedit-bench-app-") as scratch:
        start = time.perf_counter()
        downloads = Path(scratch) / "downloads"
        with running_app(scratch) as server:
            answered = time.perf_counter()
            client = Client(server.url, verbose=False, download_files=downloads)
            client.predict(model, TARGET, REFERENCE, part, "sequential", values[0], api_name="/edit")
            first_edit = time.perf_counter()
            print(f"start-up: server answers after {answered - start:.1f} s, first /edit done after "
                  f"{first_edit - start:.1f} s", flush=True)

            # 2. slider round trip against the in-process baseline
            for eps in values[:5]:
                client.predict(model, TARGET, REFERENCE, part, "sequential", eps, api_name="/edit")
            http_ms = []
            for eps in values:
                t = time.perf_counter()
                client.predict(model, TARGET, REFERENCE, part, "sequential", eps, api_name="/edit")
                http_ms.append((time.perf_counter() - t) * 1000)
            raw_ms = []
            with httpx.Client(base_url=server.url, timeout=60) as http:
                for eps in values[:5] + values:
                    t = time.perf_counter()
                    raw_edit(http, [model, TARGET, REFERENCE, part, "sequential", eps])
                    raw_ms.append((time.perf_counter() - t) * 1000)
            raw_ms = raw_ms[5:]
            service = ganedit.EditService(device="cpu")
            requests = [ganedit.EditRequest.strict(service.catalog, model, TARGET, REFERENCE, part, "sequential", eps)
                        for eps in values]
            for request in requests[:5]:
                service.edit(request)
            direct_ms = []
            for request in requests:
                t = time.perf_counter()
                service.edit(request)
                direct_ms.append((time.perf_counter() - t) * 1000)
            direct = statistics.median(direct_ms)
            for how, times in (("gradio_client.predict", http_ms), ("plain HTTP call + 4 picture downloads", raw_ms)):
                median = statistics.median(times)
                print(f"slider round trip ({args.calls} /edit calls, only ε varies) via {how}: median {median:.1f} ms "
                      f"vs {direct:.1f} ms in-process EditService.edit = {median / direct:.1f}x "
                      f"(overhead {median - direct:.1f} ms)", flush=True)

            # 3. soak
            if args.soak > 0:
                before = rss_mb(server.pid)
                clients = [Client(server.url, verbose=False, download_files=downloads) for _ in range(args.clients)]
                counter = iter(range(args.soak))
                lock = threading.Lock()
                failures, done, deadline = [], [0], time.monotonic() + args.soak_timeout
                samples = []  # (edits done, server RSS MB), every quarter of the run: a plateau, or a leak?

                def worker(c):
                    while time.monotonic() < deadline:
                        with lock:
                            i = next(counter, None)
                        if i is None:
                            return
                        seed = i % 50  # seeds repeat, so the seed cache is used, and evicts
                        try:
                            c.predict(model, seed, seed + 1000, part, "sequential", values[i % len(values)],
                                      api_name="/edit")
                            with lock:
                                done[0] += 1
                                if done[0] % max(args.soak // 4, 1) == 0:
                                    samples.append((done[0], rss_mb(server.pid)))
                        except Exception as err:  # noqa: BLE001  counted and reported
                            with lock:
                                failures.append(f"{type(err).__name__}: {str(err)[:200]}")

                t = time.perf_counter()
                with ThreadPoolExecutor(args.clients) as pool:
                    list(pool.map(worker, clients))
                elapsed = time.perf_counter() - t
                after = rss_mb(server.pid)
                print(f"soak: {done[0]} edits ok, {len(failures)} failed, of {args.soak} asked, from {args.clients} "
                      f"clients in {elapsed:.1f} s ({done[0] / elapsed:.1f} edits/s); server RSS {before:.0f} MB "
                      f"before, {after:.0f} MB after ({after - before:+.0f} MB)", flush=True)
                print("  server RSS along the way: " + ", ".join(f"{n} edits {mb:.0f} MB" for n, mb in samples))
                for failure in failures[:5]:
                    print("  failure:", failure)
                if server.process.poll() is not None:
                    print("the server died during the soak:\n" + server.log_tail())
                    return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
