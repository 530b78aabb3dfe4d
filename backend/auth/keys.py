"""Random secrets (tokens, session ids, CSRF tokens) and the hashes they are stored as."""

from __future__ import annotations

import hashlib
import secrets

#: Random bytes in every token, session id and CSRF token (URL-safe base64 text, 43 characters).
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh random secret of ``SECRET_BYTES`` bytes, as URL-safe text."""
    return secrets.token_urlsafe(SECRET_BYTES)


def digest(secret: str) -> str:
    """The SHA-256 hex digest a secret is stored and looked up by (enough for 256-bit random secrets)."""
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()
