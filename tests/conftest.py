import pytest

from app_server import running_app


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """The real web app (python app.py), offline, on a free port; shared by the app tests."""
    with running_app(tmp_path_factory.mktemp("app")) as server:
        yield server


@pytest.fixture(scope="session")
def app_url(app_server):
    return app_server.url
