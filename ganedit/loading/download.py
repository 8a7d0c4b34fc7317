"""Downloading NVIDIA's published weights so that the cache never keeps a bad file.

NVIDIA's StyleGAN (v1) files sit on Google Drive, which answers a large file with an HTML page ("can't scan this
file for viruses") whose form leads to the file, and, once a file's daily quota is used up, with a "Quota exceeded"
page; other hosts answer errors with pages too. So: a page is never saved; its confirm form (or link) is followed, a
few steps at most, with the cookies Drive sets on the way; any other page or error body is refused with what it
said. What does come back is written to a temporary file and renamed into the cache only once it is whole
(Content-Length) and loads, through ganedit's own loader, as the registered model: its kind and its resolution
(and its sha256, where the registry knows it). The sha256 is then recorded beside the file (``<file>.sha256``),
so that later uses trust it without loading it twice; a cached file without a matching record (damaged, or left
by an older ganedit) is checked again, and removed when it fails, so that it is downloaded again.
"""

import hashlib
import html.parser
import http.client
import itertools
import logging
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..files import atomic_path, write_bytes_atomically
from .errors import ModelFileError, WeightsUnavailableError
from .formats import load_file

DOWNLOAD_TIMEOUT_S = 20
BLOCK = 1 << 20  # also how much of an answer is read to tell a page from a file
MAX_BYTES = 2 << 30  # NVIDIA's largest file here is about 360 MB
MAX_PAGES = 3  # Drive's confirm page, then the file: a third page means it is going round in circles
log = logging.getLogger("ganedit")


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def _record(path):
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def check_weights(path, info):
    """The sha256 of ``path`` once it loads as registered model ``info`` (kind, resolution, sha256 where known);
    ModelFileError otherwise."""
    sha256 = file_sha256(path)
    if info.sha256 and sha256 != info.sha256:
        raise ModelFileError(f"its sha256 is {sha256}, not the known {info.sha256} of {info.official_file}")
    G = load_file(path)
    if (G.kind, G.resolution) != (info.kind, info.resolution):
        raise ModelFileError(f"it is a {G.kind} generator at {G.resolution}px, but {info.name} is a {info.kind} "
                             f"at {info.resolution}px")
    return sha256


def usable_download(path, info):
    """Whether the downloaded file ``path`` can be used: its recorded sha256 matches it, or it passes
    ``check_weights`` now (and is recorded). A file that fails is removed, with its record, so it is fetched again."""
    try:
        sha256 = file_sha256(path)
        if _record(path).exists() and _record(path).read_text().strip() == sha256 and info.sha256 in (None, sha256):
            return True
        write_bytes_atomically(_record(path), f"{check_weights(path, info)}\n".encode())
        return True
    except (OSError, ModelFileError) as err:
        log.warning("removing the downloaded %s, which can't be used (%s); it will be downloaded again", path, err)
        Path(path).unlink(missing_ok=True)
        _record(path).unlink(missing_ok=True)
        return False


class _Page(html.parser.HTMLParser):
    """What a web page says, and its forms and links (where Drive's "download anyway" leads)."""

    def __init__(self, body):
        super().__init__()
        self.text, self.forms, self.links, self._hidden = [], [], [], False
        self.feed(body.decode("utf-8", "replace"))
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self._hidden = tag in ("script", "style")
        if tag == "form":
            self.forms.append((attrs.get("action") or "", {}))
        elif tag == "input" and self.forms and attrs.get("name"):
            self.forms[-1][1][attrs["name"]] = attrs.get("value") or ""
        elif tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])

    def handle_endtag(self, tag):
        self._hidden = False

    def handle_data(self, data):
        if not self._hidden and data.strip():
            self.text.append(" ".join(data.split()))

    def confirm_url(self, base):
        """Where the page's confirm form (Drive's page today) or confirm link (its older page) leads, or None."""
        forms = (urllib.parse.urljoin(base, action.split("?")[0]) + "?" + urllib.parse.urlencode(fields)
                 for action, fields in self.forms if "confirm" in fields)
        links = (urllib.parse.urljoin(base, href) for href in self.links if "confirm=" in href)
        return next((url for url in itertools.chain(forms, links)
                     if urllib.parse.urlparse(url).scheme in ("http", "https")), None)


def _said(body):
    """What an answer that is not the file said, in a few words, for the error message."""
    words = " ".join(_Page(body).text)
    return repr(words[:200] + ("…" if len(words) > 200 else "")) if words else f"{len(body)} bytes without text"


def _is_page(response, head):
    kind = response.headers.get_content_type()
    return kind.startswith("text/") or kind in ("application/json", "application/xml") or head.lstrip()[:1] == b"<"


def _save(response, head, destination, info, progress):
    """Stream the rest of ``response`` after ``head`` into a temp file; rename it onto ``destination`` only when it
    is whole and passes ``check_weights``. Returns its sha256."""
    total = int(response.headers.get("Content-Length") or 0)
    done = 0
    with atomic_path(destination) as tmp:
        with open(tmp, "wb") as out:
            for block in itertools.chain([head], iter(lambda: response.read(BLOCK), b"")):
                out.write(block)
                done += len(block)
                if done > MAX_BYTES:
                    raise WeightsUnavailableError(f"{response.url} sent over {MAX_BYTES >> 20} MB; nothing was kept")
                if progress and total:
                    progress(min(done / total, 1.0))
        if total and done != total:
            raise WeightsUnavailableError(f"{response.url}: the download stopped after {done} of {total} bytes; "
                                          "nothing was kept, try again")
        try:
            sha256 = check_weights(tmp, info)
        except ModelFileError as err:
            said = str(err).removeprefix(f"{tmp}: ")  # the temp file's name means nothing to the reader
            raise WeightsUnavailableError(f"{response.url} sent {done} bytes that are not the weights of {info.name} "
                                          f"({said}); nothing was kept") from None
    write_bytes_atomically(_record(destination), f"{sha256}\n".encode())
    return sha256


def download_weights(info, destination, progress=None):
    """Download registered model ``info``'s official file from ``info.url`` to ``destination`` (see the module's
    docstring); returns its sha256. WeightsUnavailableError, saying what came back, when that is not the file."""
    url = info.url
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())  # Drive's confirm may need its cookie
    try:
        for _ in range(MAX_PAGES):
            with opener.open(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                head = response.read(BLOCK)
                if not _is_page(response, head):
                    return _save(response, head, destination, info, progress)
            next_url = _Page(head).confirm_url(url)
            if next_url is None:
                hint = " (Google Drive's daily download quota for this file is used up: try again later)" if (
                    b"quota" in head.lower()) else ""
                raise WeightsUnavailableError(f"{url} answered with a page, not the weights: {_said(head)}{hint}")
            url = next_url
    except urllib.error.HTTPError as err:
        said = _said(err.read(BLOCK))
        raise WeightsUnavailableError(f"{url} answered HTTP {err.code} {err.reason}: {said}") from None
    except (OSError, http.client.HTTPException) as err:  # no answer, or a broken one
        reason = getattr(err, "reason", None) or str(err) or type(err).__name__
        raise WeightsUnavailableError(f"{url}: {reason}") from None
    raise WeightsUnavailableError(f"{info.url}: still a confirm page after {MAX_PAGES} answers; nothing was kept")
