"""Passwords for the dashboard's password mode, and the API's tokens and keys.

Passwords: scrypt from the standard library (a memory-hard KDF), a random
salt per hash, and a constant-time comparison. The stored form is
``scrypt$n$r$p$salt_hex$hash_hex``; generate it with
``python -m engine hash-password`` and put it in TRAUM_AUTH_PASSWORD_HASH.

API access tokens are signed and time-stamped by itsdangerous (HMAC-SHA1
over the payload, the key derived from TRAUM_SECRET_KEY): a token is valid
until it is older than the expiry or the key changes. API keys for scripts
are random 32-byte strings shown once; the library keeps their SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

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


TOKEN_SALT = "traum-api-access"
KEY_PREFIX = "tk_"


def secret_key(configured: str | None, data_dir: Path) -> str:
    """TRAUM_SECRET_KEY, or a random key kept in ``data_dir/secret_key`` (made once, owner-only)."""
    if configured:
        return configured
    path = Path(data_dir) / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_urlsafe(48)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(key)
        return key


def issue_token(key: str, subject: str) -> str:
    return URLSafeTimedSerializer(key, salt=TOKEN_SALT).dumps({"sub": subject})


def token_valid(key: str, token: str, *, max_age_s: float) -> bool:
    try:
        URLSafeTimedSerializer(key, salt=TOKEN_SALT).loads(token, max_age=max_age_s)
    except (SignatureExpired, BadSignature):
        return False
    return True


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
