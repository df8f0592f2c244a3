"""Settings: one object, read from ``TRAUM_*`` environment variables and ``.env``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from engine.errors import ConfigError

DEFAULT_MODEL = "laion/larger_clap_music_and_speech"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TRAUM_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Path("data")
    max_file_size_mb: float = Field(100.0, gt=0)
    # NoDecode: a comma-separated list (".wav,.flac"), not JSON.
    allowed_extensions: Annotated[tuple[str, ...], NoDecode] = (
        ".wav", ".aif", ".aiff", ".flac", ".mp3", ".ogg", ".opus", ".m4a",
    )
    max_duration_s: float = Field(600.0, gt=0)
    max_concurrent_jobs: int = Field(2, ge=1, le=64)

    # CLAP model settings.
    clap_backend: Literal["transformers", "laion"] = "transformers"
    clap_model: str = DEFAULT_MODEL
    clap_revision: str | None = None
    clap_device: Literal["auto", "cpu", "cuda"] = "auto"
    clap_precision: Literal["auto", "float32", "bfloat16"] = "auto"
    clap_batch_windows: int = Field(8, ge=1, le=256)
    # laion-clap backend only: the HTSAT variant and an optional checkpoint
    # (a local .pt path or a hub "repo_id/filename").
    laion_audio_model: str = "HTSAT-base"
    laion_checkpoint: str | None = None
    laion_enable_fusion: bool = False

    # Dashboard access: a password hash from `python -m engine hash-password`
    # turns on password mode; OIDC (st.login) is configured in .streamlit/secrets.toml.
    auth_password_hash: str | None = None
    # API tokens while the dashboard is shared: signed with this key (a random one is made and kept
    # in the data folder when none is set) and valid this long.
    secret_key: str | None = None
    access_token_expire_minutes: float = Field(60.0, gt=0)

    @field_validator("allowed_extensions", mode="before")
    @classmethod
    def _split_extensions(cls, value):
        if isinstance(value, str):
            value = [part for part in value.replace(";", ",").split(",")]
        cleaned = []
        for ext in value:
            ext = str(ext).strip().lower()
            if not ext:
                continue
            cleaned.append(ext if ext.startswith(".") else "." + ext)
        if not cleaned:
            raise ValueError("at least one extension must be allowed")
        return tuple(cleaned)

    @property
    def max_file_size_bytes(self) -> int:
        return int(self.max_file_size_mb * 1024 * 1024)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "traum.duckdb"

    @property
    def audio_dir(self) -> Path:
        return self.data_dir / "audio"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"


def load_settings(**overrides) -> Settings:
    """Read settings, turning validation problems into a readable ConfigError."""
    try:
        return Settings(**overrides)
    except Exception as exc:  # pydantic.ValidationError and .env parse errors
        raise ConfigError(
            f"invalid settings: {exc}",
            hint="Check the TRAUM_* environment variables and your .env file.",
        ) from exc
