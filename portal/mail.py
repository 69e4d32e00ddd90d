"""Outgoing e-mail behind one function. Backends: SMTP (production), a file outbox (development:
each message is an .eml file in the instance folder), memory (tests)."""

from __future__ import annotations

import smtplib
import time
from email.message import EmailMessage
from pathlib import Path

from flask import current_app

# Messages sent with the memory backend, for tests.
outbox: list[EmailMessage] = []


def send(
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    *,
    attachments: list[tuple[bytes, str, str]] | None = None,
) -> EmailMessage:
    """``attachments``: (content, MIME type, file name), e.g. a booking's ``.ics`` file."""
    msg = EmailMessage()
    msg["From"] = current_app.config["MAIL_SENDER"]
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    for content, mime, filename in attachments or []:
        maintype, _, subtype = mime.partition("/")
        msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    backend = current_app.config["MAIL_BACKEND"]
    if backend == "memory":
        outbox.append(msg)
    elif backend == "file":
        folder = Path(current_app.config["MAIL_OUTBOX_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{time.time_ns()}.eml").write_bytes(bytes(msg))
    elif backend == "smtp":
        cfg = current_app.config
        with smtplib.SMTP(cfg["SMTP_HOST"], cfg["SMTP_PORT"], timeout=10) as smtp:
            if cfg["SMTP_STARTTLS"]:
                smtp.starttls()
            if cfg["SMTP_USERNAME"]:
                smtp.login(cfg["SMTP_USERNAME"], cfg["SMTP_PASSWORD"])
            smtp.send_message(msg)
    else:
        raise RuntimeError(f"unknown MAIL_BACKEND {backend!r}")
    # Neither the address nor the subject (a notice title can hold a resident's name) is logged.
    current_app.logger.info("mail sent (%s)", backend)
    return msg
