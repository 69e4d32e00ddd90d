"""Composition root: the portal, then the packages that build on it (kiosk, points) as they land."""

from __future__ import annotations

from flask import Flask

import portal


def create_app(config: dict | str | None = None) -> Flask:
    return portal.create_app(config)


app = create_app()
