import pytest
from app_server import running_app
from official_files import write_stylegan2_pickle

import ganedit
from ganedit import service as service_module


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """The real web app (python app.py), offline, on a free port; shared by the app tests."""
    with running_app(tmp_path_factory.mktemp("app")) as server:
        yield server


@pytest.fixture(scope="session")
def app_url(app_server):
    return app_server.url


@pytest.fixture
def dropped_weights(tmp_path, monkeypatch):
    """A tiny official-format Cats file in GANEDIT_WEIGHTS_DIR, offline, with small first-use catalogs; returns
    the folder catalogs are cached in."""
    folder = tmp_path / "weights"
    folder.mkdir()
    write_stylegan2_pickle(folder / ganedit.model_info("stylegan2-cats").official_file)
    monkeypatch.setenv("GANEDIT_WEIGHTS_DIR", str(folder))
    monkeypatch.setenv("GANEDIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GANEDIT_OFFLINE", "1")
    monkeypatch.setattr(service_module, "FIRST_USE_CATALOG_CPU", dict(k=5, n_images=8, batch_size=4))
    return tmp_path / "cache" / "catalogs"
