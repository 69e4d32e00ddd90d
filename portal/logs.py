"""Logging that cannot carry an Individual Number: a filter masks any 12-digit run whose check
digit holds (defence in depth; code never logs numbers in the first place)."""

from __future__ import annotations

import logging
import re

from card.ids import is_valid_my_number

_TWELVE = re.compile(r"(?<!\d)(\d{4}[ -]?\d{4}[ -]?\d{4})(?!\d)")


def redact(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(1))
        return "[個人番号 redacted]" if is_valid_my_number(digits) else m.group(1)

    return _TWELVE.sub(repl, text)


class RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def init_app(app) -> None:
    for handler in logging.getLogger().handlers + app.logger.handlers:
        handler.addFilter(RedactFilter())
    app.logger.addFilter(RedactFilter())
