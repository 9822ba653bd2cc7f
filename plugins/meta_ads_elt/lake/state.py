"""Job state: small JSON documents under ``<lake root>/_state/`` (e.g. the running report ids an
Insights task re-attaches to, the open extraction failures), written atomically beside the lake."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from meta_ads_elt.lake.partitions import LakeWriter, safe_name

STATE_DIR = "_state"


class LakeState:
    """Small JSON documents under ``<root>/_state/`` (e.g. running report ids to re-attach to)."""

    def __init__(self, root: Any = "data/lake", *, storage_options: dict | None = None) -> None:
        self._writer = LakeWriter(root, storage_options=storage_options)

    def _path(self, name: str) -> str:
        return f"{self._writer.base}/{STATE_DIR}/{'/'.join(safe_name(p) for p in name.split('/'))}.json"

    def read(self, name: str) -> dict | None:
        path = self._path(name)
        try:
            with self._writer.fs.open(path, "r") as fh:
                return json.load(fh)
        except (FileNotFoundError, ValueError):
            return None

    def write(self, name: str, payload: Mapping[str, Any]) -> None:
        self._writer.write_json(self._path(name), dict(payload))

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._writer.fs.rm(self._path(name))

    def delete_all(self, prefix: str) -> None:
        """Delete every document under ``prefix`` and its folder."""
        with contextlib.suppress(FileNotFoundError):
            self._writer.fs.rm(self._folder(prefix), recursive=True)

    def _folder(self, prefix: str) -> str:
        return f"{self._writer.base}/{STATE_DIR}/" + "/".join(
            safe_name(p) for p in prefix.strip("/").split("/")
        )

    def names(self, prefix: str) -> list[str]:
        """The names of the documents under ``prefix`` (as :meth:`read` takes them), sorted."""
        try:
            found = self._writer.fs.find(self._folder(prefix))
        except FileNotFoundError:
            return []
        return sorted(
            str(path).split(f"/{STATE_DIR}/", 1)[1].removesuffix(".json")
            for path in found
            if str(path).endswith(".json")
        )
