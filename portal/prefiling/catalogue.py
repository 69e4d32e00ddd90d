"""The procedure catalogue: form definitions as data, one JSON file per procedure and version
(``catalogue/<code>.v<N>.json``). A pre-filing keeps the version it was made with, so an older
draft is shown and checked against the definition it was started on."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

DIRECTORY = Path(__file__).resolve().parent / "catalogue"
FILE_NAME = re.compile(r"^(?P<code>[a-z_]+)\.v(?P<version>\d+)\.json$")
FIELD_TYPES = ("text", "kana", "date", "select", "checkbox", "number", "postal", "group")
ATTACHMENT_TYPES = ("pdf", "jpeg", "png")
# The order residents see them in.
ORDER = (
    "moving_in",
    "moving_out",
    "moving_within",
    "child_allowance",
    "seal_registration",
    "certificate_request",
)


class CatalogueError(ValueError):
    pass


def _check(defn: dict[str, Any], code: str, version: int) -> None:
    if defn.get("code") != code or defn.get("version") != version:
        raise CatalogueError(f"{code}.v{version}: code/version inside the file do not match its name")
    names: set[str] = set()
    for section in defn["sections"]:
        for field in section["fields"]:
            if field["type"] not in FIELD_TYPES:
                raise CatalogueError(f"{code}.v{version}: unknown field type {field['type']!r}")
            if field["name"] in names:
                raise CatalogueError(f"{code}.v{version}: field {field['name']!r} defined twice")
            names.add(field["name"])
            if not {"ja", "en"} <= set(field["label"]):
                raise CatalogueError(f"{code}.v{version}: field {field['name']!r} needs ja and en labels")
    for section in defn["sections"]:
        cond = section.get("show_if")
        if cond and cond["field"] not in names:
            raise CatalogueError(f"{code}.v{version}: show_if on unknown field {cond['field']!r}")
    for att in defn.get("attachments", []):
        if not set(att["types"]) <= set(ATTACHMENT_TYPES):
            raise CatalogueError(f"{code}.v{version}: attachment types {att['types']}")


@lru_cache(maxsize=1)
def _all() -> dict[tuple[str, int], dict[str, Any]]:
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for path in sorted(DIRECTORY.glob("*.json")):
        m = FILE_NAME.match(path.name)
        if not m:
            raise CatalogueError(f"unexpected catalogue file {path.name}")
        code, version = m["code"], int(m["version"])
        defn = json.loads(path.read_text(encoding="utf-8"))
        _check(defn, code, version)
        found[(code, version)] = defn
    return found


def get(code: str, version: int | None = None) -> dict[str, Any] | None:
    """One definition: the given version, or the latest."""
    everything = _all()
    if version is None:
        versions = [v for c, v in everything if c == code]
        if not versions:
            return None
        version = max(versions)
    return everything.get((code, version))


def latest() -> list[dict[str, Any]]:
    """The current version of every procedure, in the order residents see them."""
    codes = {c for c, _ in _all()}
    ordered = [c for c in ORDER if c in codes] + sorted(codes - set(ORDER))
    return [get(c) for c in ordered]  # type: ignore[misc]


def label(text: dict[str, str] | None, lang: str) -> str:
    """A catalogue label in the page's language (Japanese when English is missing)."""
    if not text:
        return ""
    return text.get(lang) or text.get("ja") or ""


def fields(defn: dict[str, Any]):
    """Every top-level field with its section: (section, field)."""
    for section in defn["sections"]:
        for field in section["fields"]:
            yield section, field
