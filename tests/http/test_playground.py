"""The playground's files over HTTP (in process, FastAPI's TestClient on ``create_app``): served
at ``/`` with relative paths only, openable without the API key while every API route still
needs it, and gone with ``PLAYGROUND=false``. The page in a real browser:
tests/http/test_playground_browser.py."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from higgs_worker.contract.config import Settings
from higgs_worker.http.app import create_app
from higgs_worker.http.routers.playground import ASSETS

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "higgs_worker" / "http" / "playground"
KEY = "playground-test-key-0123"


def client_for(make_worker, **env) -> TestClient:
    worker = make_worker({key.upper(): value for key, value in env.items()})
    return TestClient(create_app(worker, start_loading=False))


def test_the_page_and_its_files_are_served(make_worker):
    client = client_for(make_worker)
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name, media_type in ASSETS.items():
        response = client.get(f"/playground/{name}")
        assert response.status_code == 200 and response.headers["content-type"] == media_type
        assert response.content == (FOLDER / name).read_bytes()
    assert client.get("/playground/../app.py").status_code == 404
    assert client.get("/playground/secrets.txt").json()["error"]["code"] == "not_found"


def test_every_reference_is_relative_and_no_other_host_is_named():
    """Behind RunPod's load-balancing URL (or any prefix) only relative paths reach the worker."""
    html = (FOLDER / "index.html").read_text()
    for ref in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert ref == "data:," or (not ref.startswith("/") and "//" not in ref), ref
    js = (FOLDER / "playground.js").read_text()
    paths = re.findall(r'(?:api|postJson|fetch)\("([^"]+)"', js)
    assert {"v1/audio/voices", "v1/audio/speech", "v1/synthesize", "v1/audio/voices/design", "ping"} <= set(paths)
    assert all(not path.startswith("/") for path in paths)
    for text in (html, js, (FOLDER / "playground.css").read_text()):
        assert not re.search(r"https?://", text)


def test_with_an_api_key_the_shell_opens_but_no_route_answers_without_the_key(make_worker):
    client = client_for(make_worker, api_key=KEY)
    assert client.get("/").status_code == 200
    assert client.get("/playground/playground.js").status_code == 200
    for path in ("/v1/audio/voices", "/v1/state", "/v1/models"):
        assert client.get(path).status_code == 401, path
    assert client.get("/v1/audio/voices", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    # the open prefix is the playground's, not a way around the key
    assert client.get("/playgroundx").status_code == 401
    assert client.post("/v1/synthesize", json={"input": {"text": "hi"}}).status_code == 401


def test_playground_false_turns_the_page_off(make_worker):
    assert Settings.from_env({"PLAYGROUND": "false"}).playground is False
    assert Settings.from_env({}).playground is True
    client = client_for(make_worker, playground="false", api_key=KEY)
    assert client.get("/").status_code == 401  # nothing is open any more
    client = client_for(make_worker, playground="false")
    assert client.get("/").status_code == 404
    assert client.get("/playground/index.html").status_code == 404
    assert client.get("/v1/audio/voices").status_code == 200


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_the_files_are_package_data(name):
    """The wheel (and the image, which copies higgs_worker/) carries every served file."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert any(fnmatch.fnmatch(f"playground/{name}", pattern) for pattern in patterns["higgs_worker.http"])
    assert (FOLDER / name).is_file()
