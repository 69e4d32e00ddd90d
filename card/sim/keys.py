"""Key loading with a cache: tests build many virtual cards from one profile."""

from __future__ import annotations

import functools
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def load_key(path: Path) -> rsa.RSAPrivateKey:
    return _load(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _load(path: str, _mtime_ns: int) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("expected an RSA key")
    return key
