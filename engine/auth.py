"""Password hashing for the dashboard's optional password mode.

scrypt from the standard library (a memory-hard KDF), a random salt per
hash, and a constant-time comparison. The stored form is
``scrypt$n$r$p$salt_hex$hash_hex``; generate it with
``python -m engine hash-password`` and put it in TRAUM_AUTH_PASSWORD_HASH.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from engine.errors import ConfigError

_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ConfigError("the password is too short.", hint="Use at least 8 characters.")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, expected = encoded.split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected) // 2)
    except ValueError as exc:
        raise ConfigError(
            "TRAUM_AUTH_PASSWORD_HASH is not a valid password hash.",
            hint="Generate one with: python -m engine hash-password",
        ) from exc
    return hmac.compare_digest(digest.hex(), expected)
