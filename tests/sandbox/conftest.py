"""Helpers for the sandbox's own tests: a tiny Graph client over ``requests``."""

from __future__ import annotations

import json

import pytest
import requests


class Graph:
    """GET/POST against a sandbox; returns (status, parsed body, headers)."""

    def __init__(self, handle, token: str | None = None):
        self.handle = handle
        self.token = token if token is not None else handle.token
        self.http = requests.Session()

    def call(self, method: str, path: str, token: str | None = None, version: str = "v26.0", **params):
        params = {k: (json.dumps(v) if isinstance(v, list | dict) else v) for k, v in params.items()}
        tok = self.token if token is None else token
        if tok:
            params.setdefault("access_token", tok)
        url = (
            f"{self.handle.url}/{version}/{path.lstrip('/')}"
            if version
            else f"{self.handle.url}/{path.lstrip('/')}"
        )
        if method == "GET":
            resp = self.http.get(url, params=params, timeout=60)
        else:
            resp = self.http.request(method, url, data=params, timeout=60)
        try:
            body = resp.json()
        except ValueError:
            body = resp.text
        return resp.status_code, body, resp.headers

    def get(self, path: str, **params):
        return self.call("GET", path, **params)

    def post(self, path: str, **params):
        return self.call("POST", path, **params)

    def ok(self, path: str, **params):
        status, body, _ = self.get(path, **params)
        assert status == 200, body
        return body

    def page_all(self, path: str, **params) -> list:
        rows, after, pages = [], None, 0
        while True:
            q = dict(params)
            if after:
                q["after"] = after
            body = self.ok(path, **q)
            pages += 1  # a page may be short or empty and still have next (paging.py, "Paginated Results")
            assert pages < 10_000, "paging never ends"
            rows.extend(body["data"])
            paging = body.get("paging", {})
            if "next" not in paging:
                return rows
            after = paging["cursors"]["after"]

    def page_token(self, page_id: str) -> str:
        return self.ok(page_id, fields="access_token")["access_token"]


@pytest.fixture(scope="session")
def graph(sandbox) -> Graph:
    return Graph(sandbox)


@pytest.fixture(scope="session")
def world(sandbox) -> dict:
    return sandbox.world()


def _error_of(body) -> dict:
    assert isinstance(body, dict) and "error" in body, body
    err = body["error"]
    assert {"message", "type", "code", "fbtrace_id"} <= set(err), err
    assert isinstance(err["code"], int) and isinstance(err["message"], str)
    return err


@pytest.fixture(scope="session")
def error_of():
    """Assert a body is Meta's error envelope and return its ``error`` object."""
    return _error_of


@pytest.fixture(scope="session")
def graph_for():
    """``graph_for(handle, token=None)`` -> a Graph client for another sandbox or token."""
    return Graph


@pytest.fixture(scope="module")
def module_sandbox_factory():
    """Like ``sandbox_factory`` but shared by one test module (stopped after the module)."""
    from meta_sandbox.testing import start_sandbox

    started = []

    def _start(**options):
        handle = start_sandbox(**options)
        started.append(handle)
        return handle

    yield _start
    for handle in started:
        handle.stop()


@pytest.fixture(scope="session")
def instagram_unpaced() -> str:
    """``budgets=`` for a sandbox whose tests read Instagram conversations as fast as they can, about
    something else than Meta's 2 calls a second per Instagram account (test_ratelimit.py tests that quota)."""
    return "instagram=100000"
