"""The terminal agent (``python -m kiosk.agent``): owns the card reader on a kiosk, counter, library or
shelter terminal, and serves the page beside it on 127.0.0.1 (docs/card-identity.md).

Modules: :mod:`~kiosk.agent.signing` (terminal request signatures; the server imports it to verify),
:mod:`~kiosk.agent.client` (signed calls to the server), :mod:`~kiosk.agent.reader` (backends and the
watcher thread), :mod:`~kiosk.agent.service` (status, events, login, link), :mod:`~kiosk.agent.api`
(the loopback HTTP API). Needs only ``card`` and the standard library (plus ``cryptography``): no Flask.
"""
