"""One family of errors whose messages a person can read.

Every error carries a short title ("Not an audio file"), a message that names
the file or setting involved, and a hint saying what the user can do. The CLI
and the dashboard turn them into text at one boundary; nothing else catches
them for display.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of every error the engine reports to a user."""

    title = "Engine error"

    def __init__(self, message: str, *, hint: str | None = None, title: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if title is not None:
            self.title = title

    def __str__(self) -> str:
        text = f"{self.title}: {self.message}"
        if self.hint:
            text += f" {self.hint}"
        return text

    def to_dict(self) -> dict:
        return {"title": self.title, "message": self.message, "hint": self.hint}


class ConfigError(EngineError):
    title = "Configuration error"


class InputError(EngineError):
    """A file the user gave us cannot be accepted (type, size, content)."""

    title = "Rejected file"


class DecodeError(InputError):
    title = "Not a decodable audio file"


class UnsupportedTypeError(InputError):
    """A file whose type (extension) is not among the allowed ones."""

    title = "Unsupported file type"


class TooLargeError(InputError):
    """A file over the size limit."""

    title = "File too large"


class ConflictError(InputError):
    """A name that is taken already (a collection, an API key)."""

    title = "Name taken"


class StoreError(EngineError):
    title = "Library error"


class LibraryLockedError(StoreError):
    title = "Library in use"


class AuthError(EngineError):
    """A request without valid credentials (a wrong password, an expired token, a revoked key)."""

    title = "Not authorised"


class NotFoundError(EngineError):
    title = "Not found"


class ModelUnavailableError(EngineError):
    title = "CLAP model unavailable"


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's text (or its type), for messages built around it."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]
