"""Follower tokens of web subscriptions, encrypted at rest (AES-256-GCM).

A profile zip must contain the follower token in clear, at any time the subscriber asks for it, so
the hub keeps a copy it can decrypt. The key lives in its own file (`web.key`, mode 0600) in the data
directory, not in the database: a copy of the database alone (a backup) holds no usable token.
"""
from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "web.key"


class TokenSealer:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> TokenSealer:
        path = data_dir / KEY_FILE
        if not path.exists():
            key = AESGCM.generate_key(bit_length=256)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(key)
                handle.flush()
                os.fsync(handle.fileno())
        return cls(path.read_bytes())

    def seal(self, token: str, context: str) -> str:
        # context (the token id) is bound as associated data: a sealed value cannot be moved to another row.
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, token.encode("utf-8"), context.encode("utf-8"))
        return base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def unseal(self, sealed: str, context: str) -> str:
        raw = base64.urlsafe_b64decode(sealed.encode("ascii"))
        return self._aead.decrypt(raw[:12], raw[12:], context.encode("utf-8")).decode("utf-8")
