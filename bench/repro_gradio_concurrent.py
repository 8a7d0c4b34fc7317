"""Reproduce Gradio's cache race: identical concurrent calls that return the same image.

A numpy (or PIL) image output is encoded and written by gradio.processing_utils.save_pil_to_cache to
<cache>/<sha256 of the PNG bytes>/image.png with a plain Path.write_bytes (open "wb" = truncate, then
write).  Every identical call writes the same path again, while GET /gradio_api/file=... of an earlier call
is streaming it with starlette's FileResponse, whose Content-Length comes from an os.stat taken before the
read.  The reader then sees a truncated/refilled file: h11 raises "Too little/much data for declared
Content-Length" in the server and the client gets an error or a wrong file.

Usage (each mode starts its own small server as a child process on 127.0.0.1, then stops it):

    .venv/bin/python bench/repro_gradio_concurrent.py --mode numpy            # as the app was: fails
    .venv/bin/python bench/repro_gradio_concurrent.py --mode filepath         # workaround (a)
    .venv/bin/python bench/repro_gradio_concurrent.py --mode all --calls 32 --rounds 3

Modes:
    numpy     handler returns the numpy array (gr.Image(type="numpy", format="png")): the bug
    pil       handler returns a PIL image: same writer, same bug
    filepath  handler writes the PNG itself to a fresh per-request temp folder and returns the path;
              gradio copies it into its cache with save_file_to_cache (temp name + os.replace)
    unique    handler returns a PIL image carrying a per-request PNG text chunk, so every call hashes
              to its own cache folder (pixels identical, file bytes not)
    patched   numpy handler, but gradio.processing_utils.save_pil_to_cache is monkeypatched to write
              temp + os.replace

A call counts as failed if gradio_client raises, or the downloaded file does not decode to exactly the
expected pixels.  The child's stderr is scanned for h11's Content-Length errors.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

MODES = ("numpy", "pil", "filepath", "unique", "patched")


def picture(size, index=0):
    import numpy as np

    return np.random.default_rng(1234 + index).integers(0, 256, (size, size, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------------- server

def serve(mode, port, size, outputs, limit, component="image"):
    import uuid

    import gradio as gr
    from PIL import Image

    pictures = [picture(size, k) for k in range(outputs)]
    # next to (not inside) the server's GRADIO_TEMP_DIR, so gradio copies from here into its cache; the
    # parent removes the whole work folder afterwards
    files_root = Path(os.environ["GRADIO_TEMP_DIR"]).parent / "handler-files"
    files_root.mkdir(parents=True, exist_ok=True)

    if mode == "patched":
        from gradio import processing_utils as pu

        def save_pil_to_cache(img, cache_dir, name="image", format="webp"):
            data = pu.encode_pil_to_bytes(img, format)
            folder = Path(cache_dir) / pu.hash_bytes(data)
            folder.mkdir(exist_ok=True, parents=True)
            target = (folder / f"{name}.{format}").resolve()
            fd, staging = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.chmod(staging, 0o644)
                os.replace(staging, target)
            except BaseException:
                Path(staging).unlink(missing_ok=True)
                raise
            return str(target)

        pu.save_pil_to_cache = save_pil_to_cache

    def handler(_x):
        if mode in ("numpy", "patched"):
            out = list(pictures)
        elif mode == "pil":
            out = [Image.fromarray(p) for p in pictures]
        elif mode == "unique":
            out = []
            tag = uuid.uuid4().hex
            for p in pictures:
                img = Image.fromarray(p)
                img.info["request"] = tag  # copied into a PNG tEXt chunk by gradio's encoder
                out.append(img)
        elif mode == "filepath":
            folder = Path(tempfile.mkdtemp(dir=files_root))
            out = []
            for k, p in enumerate(pictures):
                path = folder / f"picture_{k}.png"
                Image.fromarray(p).save(path)
                out.append(str(path))
        if component == "gallery":
            return [(item, f"seed {k}") for k, item in enumerate(out)]
        return out[0] if outputs == 1 else out

    kind = "filepath" if mode == "filepath" else "numpy"
    with gr.Blocks() as demo:
        inp = gr.Number(label="x")
        if component == "gallery":  # like the app's candidate strip: one Gallery of (picture, caption)
            outs = [gr.Gallery(label="strip", format="png")]
            outputs = 1
        else:
            outs = [gr.Image(label=f"o{k}", type=kind, format="png") for k in range(outputs)]
        btn = gr.Button()
        btn.click(handler, inp, outs[0] if outputs == 1 else outs, api_name="edit", concurrency_id="edit")
    demo.queue(default_concurrency_limit=limit, max_size=256)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=False, quiet=True, show_error=True)


# ---------------------------------------------------------------------------------------------------- client

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, proc, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url + "config", timeout=2).read()
            return
        except Exception:
            time.sleep(0.3)
    raise TimeoutError("server did not start")


def run_mode(args, mode):
    import numpy as np
    from gradio_client import Client
    from PIL import Image

    expected = [picture(args.size, k) for k in range(args.outputs)]
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    work = Path(tempfile.mkdtemp(prefix=f"repro-{mode}-"))
    env = dict(os.environ, GRADIO_TEMP_DIR=str(work / "server-cache"), GRADIO_ANALYTICS_ENABLED="False",
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    log = open(work / "server.log", "w+")
    proc = subprocess.Popen([sys.executable, __file__, "--serve", "--mode", mode, "--port", str(port),
                             "--size", str(args.size), "--outputs", str(args.outputs),
                             "--limit", str(args.limit), "--component", args.component], stdout=log, stderr=subprocess.STDOUT, env=env)
    counts = collections.Counter()
    examples = {}
    try:
        wait_ready(url, proc, 60)
        client = Client(url, verbose=False, download_files=str(work / "client-downloads"),
                        max_workers=max(args.calls, 40))

        def one(i):
            result = client.predict(float(i), api_name="/edit")
            if args.component == "gallery":
                paths = [item["image"] for item in result]
            else:
                paths = [result] if args.outputs == 1 else list(result)
            if len(paths) != len(expected):
                raise ValueError(f"{len(paths)} pictures, expected {len(expected)}")
            for k, path in enumerate(paths):
                got = np.asarray(Image.open(path).convert("RGB"))
                if got.shape != expected[k].shape or not np.array_equal(got, expected[k]):
                    raise ValueError(f"output {k}: pixels differ from the expected picture")
            return [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]

        deadline = time.time() + args.timeout
        for _ in range(args.rounds):
            digests = collections.Counter()
            with cf.ThreadPoolExecutor(max_workers=args.calls) as pool:
                futures = [pool.submit(one, i) for i in range(args.calls)]
                for fut in futures:
                    try:
                        digests[tuple(fut.result(timeout=max(1, deadline - time.time())))] += 1
                        counts["ok"] += 1
                    except cf.TimeoutError:
                        counts["timeout"] += 1
                    except Exception as err:  # noqa: BLE001
                        kind = f"{type(err).__name__}"
                        counts["failed"] += 1
                        counts[f"failed:{kind}"] += 1
                        examples.setdefault(kind, str(err)[:200])
            if len(digests) > 1:
                counts["rounds_with_differing_files"] += 1
            if time.time() > deadline:
                counts["stopped_at_deadline"] += 1
                break
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.seek(0)
        text = log.read()
        log.close()
        counts["server:Too little data"] = len(re.findall(r"LocalProtocolError: Too little data", text))
        counts["server:Too much data"] = len(re.findall(r"LocalProtocolError: Too much data", text))
        counts["server:other tracebacks"] = max(0, text.count("Traceback") - counts["server:Too little data"]
                                                - counts["server:Too much data"])
        if args.keep:
            print(f"  kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    total = args.calls * args.rounds
    print(f"{mode:9s} failed {counts['failed'] + counts['timeout']}/{total} calls "
          f"({args.component}, {args.outputs} picture(s)/call, {args.size}x{args.size}, concurrency_limit={args.limit}); "
          + ", ".join(f"{k}={v}" for k, v in sorted(counts.items()) if k not in ("failed",) and v))
    for kind, msg in examples.items():
        print(f"    e.g. {kind}: {msg}")
    sys.stdout.flush()
    return counts


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", default="numpy", choices=(*MODES, "all"))
    p.add_argument("--calls", type=int, default=32, help="identical concurrent calls per round (16-48)")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--outputs", type=int, default=1, help="image outputs per call")
    p.add_argument("--component", default="image", choices=("image", "gallery"),
                   help="image: --outputs gr.Image outputs; gallery: one gr.Gallery of --outputs pictures")
    p.add_argument("--limit", type=int, default=2, help="queue default_concurrency_limit (the app's is 2)")
    p.add_argument("--timeout", type=float, default=120, help="seconds per mode before giving up")
    p.add_argument("--keep", action="store_true", help="keep the temp folder with the server log")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve(args.mode, args.port, args.size, args.outputs, args.limit, args.component)
        return
    import gradio

    print(f"gradio {gradio.__version__}")
    failed = {m: run_mode(args, m) for m in (MODES if args.mode == "all" else (args.mode,))}
    sys.exit(0 if all(c["failed"] + c["timeout"] == 0 for c in failed.values()) else 1)


if __name__ == "__main__":
    main()
