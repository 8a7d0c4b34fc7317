"""Downloads never keep a bad file: a local HTTP server plays Google Drive's confirm page, its quota page, a cut
connection, a cut or foreign file, an HTTP error and the right file, for a test model registered at the tiny
file's resolution."""

import hashlib
import http.server
import threading
import urllib.parse

import pytest
from official_files import write_stylegan2_pickle

from ganedit import ModelFileError, WeightsUnavailableError, load_generator
from ganedit.loading import file_sha256, registry
from ganedit.loading.registry import ModelInfo, fetch_weights

NAME = "tiny-download"
CONFIRM_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>
<style>.uc-name-size { font-weight: bold }</style></head><body>
<p>Google Drive can't scan this file for viruses.</p>
<form id="download-form" action="ACTION" method="get">
<input type="submit" id="uc-download-link" value="Download anyway"/>
<input type="hidden" name="id" value="1abc"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="u-42">
</form></body></html>"""
QUOTA_PAGE = """<html><head><title>Google Drive - Quota exceeded</title></head><body><p>Sorry, you can't view or
download this file at this time.</p><p>Too many users have viewed or downloaded this file recently.</p></body></html>"""


class Server(http.server.ThreadingHTTPServer):
    def __init__(self, files):
        super().__init__(("127.0.0.1", 0), Answers)
        self.files, self.requests = files, []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class Answers(http.server.BaseHTTPRequestHandler):
    """HTTP/1.0: one answer per connection, closed after it, so a short body is a cut connection."""

    def log_message(self, *args):
        pass

    def answer(self, body, status=200, kind="application/octet-stream", length=None, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for header in headers:
            self.send_header(*header)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.server.requests.append(self.path)
        url = urllib.parse.urlparse(self.path)
        query, files = urllib.parse.parse_qs(url.query), self.server.files
        if url.path == "/drive":  # Drive's answer for a large file: a page whose form leads to it, and a cookie
            page = CONFIRM_PAGE.replace("ACTION", f"{self.server.url}/download")
            self.answer(page.encode(), kind="text/html; charset=utf-8",
                        headers=[("Set-Cookie", "download_warning_1abc=t; Path=/")])
        elif url.path == "/download":  # the file, only for the confirmed request that brings the cookie back
            confirmed = query.get("confirm") == ["t"] and query.get("uuid") == ["u-42"]
            if confirmed and "download_warning_1abc=t" in self.headers.get("Cookie", ""):
                self.answer(files["good"])
            else:
                self.answer(b"<html><body>confirm first</body></html>", kind="text/html")
        elif url.path == "/quota":
            self.answer(QUOTA_PAGE.encode(), kind="text/html; charset=utf-8")
        elif url.path == "/cut-connection":
            self.answer(files["good"][:1000], length=len(files["good"]))
        elif url.path == "/missing":
            self.answer(b"<html><title>Not Found</title><body>No such file</body></html>", 404, "text/html")
        else:
            self.answer(files[url.path.strip("/")])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    write_stylegan2_pickle(folder / "good.pkl", resolution=32, seed=1)
    write_stylegan2_pickle(folder / "other.pkl", resolution=64, seed=1)
    good = (folder / "good.pkl").read_bytes()
    files = {"good": good, "cut-file": good[: len(good) // 2], "other": (folder / "other.pkl").read_bytes()}
    with Server(files) as running:
        thread = threading.Thread(target=running.serve_forever, daemon=True)
        thread.start()
        yield running
        running.shutdown()


@pytest.fixture
def cache(tmp_path, monkeypatch, server):
    """An empty cache, nothing else to get weights from, and the test model's URL on the local server."""
    for variable in ("GANEDIT_WEIGHTS_DIR", "GANEDIT_HUB_REPO", "GANEDIT_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("GANEDIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    server.requests.clear()
    return tmp_path / "cache"


def register(monkeypatch, url, **fields):
    info = ModelInfo(name=NAME, title="tiny", kind="stylegan2", resolution=32, crop=None, truncation_psi=1.0,
                     license="test only", official_file=f"{NAME}.pkl", url=url, **fields)
    monkeypatch.setitem(registry.MODELS, NAME, info)


def cache_files(cache):
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_drive_confirm_page_is_followed_to_the_file(cache, server, monkeypatch):
    register(monkeypatch, f"{server.url}/drive")
    reports = []
    path = fetch_weights(NAME, reports.append)
    assert path == cache / f"{NAME}.pkl" and path.read_bytes() == server.files["good"]
    assert [r.split("?")[0] for r in server.requests] == ["/drive", "/download"]
    assert reports and reports[-1] == 1.0
    assert cache_files(cache) == [f"{NAME}.pkl", f"{NAME}.pkl.sha256"]
    assert (cache / f"{NAME}.pkl.sha256").read_text().strip() == file_sha256(path)
    G = load_generator(NAME)
    assert (G.kind, G.resolution) == ("stylegan2", 32)
    assert fetch_weights(NAME) == path and len(server.requests) == 2  # from the cache from now on


def test_the_right_file_is_kept_and_its_known_sha256_checked(cache, server, monkeypatch):
    register(monkeypatch, f"{server.url}/good", sha256=hashlib.sha256(server.files["good"]).hexdigest())
    assert fetch_weights(NAME).read_bytes() == server.files["good"] and server.requests == ["/good"]


@pytest.mark.parametrize("route, said", [
    ("/quota", r"answered with a page, not the weights: .Google Drive - Quota exceeded Sorry, you can't view.*"
               r"daily download quota"),
    ("/cut-connection", r"the download stopped after 1000 of \d+ bytes; nothing was kept"),
    ("/cut-file", r"sent \d+ bytes that are not the weights of tiny-download \(.*refused to load: .*truncated"),
    ("/other", "sent .* not the weights .* a stylegan2 generator at 64px, but tiny-download is a stylegan2 at 32px"),
    ("/missing", "answered HTTP 404 Not Found: 'Not Found No such file'"),
])
def test_what_is_not_the_file_is_refused_with_what_came_back_and_nothing_is_kept(cache, server, monkeypatch, route,
                                                                                  said):
    register(monkeypatch, server.url + route)
    with pytest.raises(WeightsUnavailableError, match=said) as err:
        fetch_weights(NAME)
    assert f"Get {NAME}.pkl from NVIDIA" in str(err.value)  # and what to do instead
    assert cache_files(cache) == []


def test_a_file_that_does_not_match_the_known_sha256_is_not_kept(cache, server, monkeypatch):
    register(monkeypatch, f"{server.url}/good", sha256="0" * 64)
    with pytest.raises(WeightsUnavailableError, match="its sha256 is [0-9a-f]{64}, not the known 0{64}"):
        fetch_weights(NAME)
    assert cache_files(cache) == []


@pytest.mark.parametrize("bad", [b"<html>an old ganedit kept this page</html>", "half"])
def test_a_cached_file_that_fails_to_load_is_removed_and_fetched_again(cache, server, monkeypatch, bad):
    register(monkeypatch, f"{server.url}/good")
    cache.mkdir()
    good = server.files["good"]
    (cache / f"{NAME}.pkl").write_bytes(good[: len(good) // 2] if bad == "half" else bad)
    (cache / f"{NAME}.pkl.sha256").write_text("a record that no longer matches\n")
    with pytest.raises(ModelFileError):
        load_generator(cache / f"{NAME}.pkl")
    assert fetch_weights(NAME).read_bytes() == good and server.requests == ["/good"]
    assert load_generator(NAME).resolution == 32


def test_a_good_cached_file_without_its_record_is_checked_once_and_kept(cache, server, monkeypatch):
    register(monkeypatch, f"{server.url}/good")
    cache.mkdir()
    (cache / f"{NAME}.pkl").write_bytes(server.files["good"])
    assert fetch_weights(NAME) == cache / f"{NAME}.pkl" and server.requests == []
    assert (cache / f"{NAME}.pkl.sha256").read_text().strip() == file_sha256(cache / f"{NAME}.pkl")


def test_the_bundled_model_and_dropped_files_need_no_download(cache, server, tmp_path, monkeypatch):
    assert fetch_weights("cartoon-faces") == registry.PACKAGE_DIR / registry.model_info("cartoon-faces").bundled_file
    register(monkeypatch, f"{server.url}/good")
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / f"{NAME}.pkl").write_bytes(server.files["other"])  # an operator's file is theirs: not checked here
    monkeypatch.setenv("GANEDIT_WEIGHTS_DIR", str(folder))
    assert fetch_weights(NAME) == folder / f"{NAME}.pkl" and server.requests == [] and cache_files(cache) == []
