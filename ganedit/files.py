"""Where ganedit keeps files, and writing them so that a reader never sees half of one, under names that stay in
their folder."""

import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path


def cache_dir():
    """``$GANEDIT_CACHE`` when it names an absolute folder (``~`` expanded), else ~/.cache/ganedit.

    An empty, blank or relative value falls back to the default: it would otherwise be read against whatever
    folder the process runs in, and put downloads and first-use catalogs there (the repository's catalogs/ too).
    """
    path = Path(os.environ.get("GANEDIT_CACHE", "")).expanduser()
    return path if path.is_absolute() else Path.home() / ".cache" / "ganedit"


STALE_TEMP_S = 60  # a temp file untouched this long was left by a killed writer (a live one keeps writing)


def safe_name(text, max_length=80):
    """``text`` (a part or model name: data, not trusted) as a plain file name.

    Every run of characters other than letters, digits, '-' and '_' becomes one '_', and '_' is trimmed from both
    ends, so the result has no separator or dot: it cannot climb out of its folder ('../x' gives 'x') nor hide.
    """
    name = re.sub(r"[^\w-]+", "_", str(text)).strip("_")[:max_length]
    if not name:
        raise ValueError(f"{text!r} leaves nothing to use as a file name")
    return name


def _remove_stale_temps(path):
    """Remove temp files of ``path`` that writers killed mid-write left behind (see ``atomic_path``)."""
    prefix = f".{path.name}."
    for old in path.parent.iterdir():
        if old.name.startswith(prefix) and old.name.endswith(".tmp"):
            try:
                if time.time() - old.stat().st_mtime > STALE_TEMP_S:
                    old.unlink()
            except OSError:
                pass  # another writer removed it first


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; when the block succeeds it is renamed onto ``path``, otherwise removed.

    A process killed inside the block leaves its ``.<name>.*.tmp`` behind; the next write of ``path`` removes it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes_atomically(path, data):
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


class PictureFolders:
    """Pictures written as PNG files, each batch in a folder of its own that no later write touches.

    For a web server: a file that a response is still sending must never be rewritten (Gradio encodes returned
    arrays in place under a content hash, so identical concurrent requests once got truncated pictures). Folders
    older than ``keep_s`` are removed at the next write; ``remove()`` removes them all.
    """

    def __init__(self, keep_s=600):
        self.root, self.keep_s = Path(tempfile.mkdtemp(prefix="ganedit-pictures-")), keep_s

    def write(self, stem, pictures):
        """{name: H x W x 3 uint8 array} -> {name: path of '<stem>_<name>.png'}, in a new folder."""
        from PIL import Image  # only servers write pictures this way

        self._forget_old()
        folder = Path(tempfile.mkdtemp(dir=self.root))
        paths = {name: str(folder / f"{stem}_{name}.png") for name in pictures}
        for name, array in pictures.items():
            Image.fromarray(array).save(paths[name])
        return paths

    def _forget_old(self):
        for folder in self.root.iterdir():
            try:
                old = time.time() - folder.stat().st_mtime > self.keep_s
            except FileNotFoundError:  # another request removed it just now
                continue
            if old:
                shutil.rmtree(folder, ignore_errors=True)

    def remove(self):
        shutil.rmtree(self.root, ignore_errors=True)
