"""Attachments: the type is sniffed from the first bytes (never taken from the name or the
browser's Content-Type), the size is limited, and the file is stored outside the web root under a
random name (``PREFILING_ATTACHMENT_DIR``, by default ``instance/attachments/``). Files are served
back only through a view that checks who asks (``send``)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from portal.extensions import db
from portal.prefiling.models import Attachment, PreFiling

MAGIC = (
    (b"%PDF-", "pdf", "application/pdf"),
    (b"\xff\xd8\xff", "jpeg", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png", "image/png"),
)
CONTENT_TYPES = {kind: mime for _, kind, mime in MAGIC}
DEFAULT_MAX_BYTES = 5 * 1024 * 1024


class AttachmentError(Exception):
    """Refused, with a code the view turns into a sentence (``too_large``, ``bad_type``, …)."""

    def __init__(self, code: str, **params) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


def sniff(head: bytes) -> str | None:
    """'pdf', 'jpeg' or 'png' from the content's first bytes; None for anything else."""
    for magic, kind, _ in MAGIC:
        if head.startswith(magic):
            return kind
    return None


def directory() -> Path:
    path = Path(
        current_app.config.get("PREFILING_ATTACHMENT_DIR")
        or os.path.join(current_app.instance_path, "attachments")
    )
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def store(prefiling: PreFiling, spec: dict, stream, filename: str) -> Attachment:
    """Check and store one upload for the attachment ``spec`` (from the catalogue). Replaces an
    earlier file for the same document."""
    limit = int(spec.get("max_bytes", DEFAULT_MAX_BYTES))
    content = stream.read(limit + 1)
    if not content:
        raise AttachmentError("empty")
    if len(content) > limit:
        raise AttachmentError("too_large", mb=round(limit / 1024 / 1024, 1))
    kind = sniff(content[:16])
    if kind is None or kind not in spec["types"]:
        raise AttachmentError("bad_type", types=", ".join(t.upper() for t in spec["types"]))
    stored_name = secrets.token_hex(20)
    path = directory() / stored_name
    with open(path, "xb") as fh:
        fh.write(content)
    for old in db.session.scalars(
        select(Attachment).where(Attachment.prefiling_id == prefiling.id, Attachment.code == spec["code"])
    ):
        remove(old)
    attachment = Attachment(
        prefiling_id=prefiling.id,
        code=spec["code"],
        filename=os.path.basename(filename or "file")[:200] or "file",
        content_type=CONTENT_TYPES[kind],
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        stored_name=stored_name,
    )
    db.session.add(attachment)
    db.session.flush()
    return attachment


def remove(attachment: Attachment) -> None:
    with contextlib.suppress(FileNotFoundError):
        (directory() / attachment.stored_name).unlink()
    db.session.delete(attachment)
    db.session.flush()


def for_prefiling(prefiling_id: int) -> list[Attachment]:
    return list(
        db.session.scalars(
            select(Attachment).where(Attachment.prefiling_id == prefiling_id).order_by(Attachment.id)
        )
    )


def send(attachment: Attachment):
    """The file as a download, with the sniffed type. The caller has checked who may see it
    (the owner, or staff — whose views write the access record)."""
    content = (directory() / attachment.stored_name).read_bytes()
    response = current_app.response_class(content, mimetype=attachment.content_type)
    response.headers.set("Content-Disposition", "attachment", filename=attachment.filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response
