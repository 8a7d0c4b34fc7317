"""The app comes up even when a model can't: a damaged bundled catalog or a hostile weights file marks that
model unavailable, says why in the server log, and the server keeps serving."""

import os
import pickle
from pathlib import Path

import httpx
import pytest
from app_server import running_app
from gradio_client import Client

import ganedit

BUNDLED = ganedit.BUNDLED_MODELS


class Payload:
    def __reduce__(self):
        return os.system, ("touch /tmp/ganedit-pwned",)


def test_damaged_bundled_catalogs_leave_the_server_up(tmp_path):
    catalogs = tmp_path / "catalogs"
    catalogs.mkdir()
    for name in BUNDLED:
        (catalogs / f"{name}.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    with running_app(tmp_path / "app", env={"GANEDIT_CATALOG_DIR": str(catalogs)}) as server:
        page = httpx.get(server.url, timeout=30).text
        assert "No model can be used on this server right now" in page
        for name in BUNDLED:
            assert f"{name} could not be loaded" in server.log_tail()


def test_a_hostile_weights_file_is_refused_and_the_bundled_model_still_serves(tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    # a pickle that would run a shell command if it were unpickled plainly
    (weights / "stylegan2-cat-config-f.pkl").write_bytes(pickle.dumps(Payload(), protocol=2))
    env = {"GANEDIT_WEIGHTS_DIR": str(weights)}
    with running_app(tmp_path / "app", env=env) as server:
        client = Client(server.url, verbose=False, download_files=tmp_path / "downloads")
        with pytest.raises(Exception, match="stylegan2-cats is not available: its weights file could not be read"):
            client.predict("stylegan2-cats", 1, 2, "eyes", "sequential", 1.0, api_name="/edit")
        assert len(client.predict("cartoon-faces", 1, 2, "eyes", "sequential", 1.0, api_name="/edit")) == 4
        assert "refused to load" in server.log_tail() and "system" in server.log_tail()
    assert not Path("/tmp/ganedit-pwned").exists()

