"""Where a CLAP model comes from, and what identifies it.

A transformers model is a local directory or a hub id (safetensors only, never
the pickled ``pytorch_model.bin``). Its id is the content hash of the files
that decide what it computes, so two different models never share one.
Nothing here touches the network except the hub probe (with a hard deadline)
and :func:`download_hub_model`; huggingface_hub is imported inside functions.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from pathlib import Path

from engine.config import Settings
from engine.errors import ModelUnavailableError

log = logging.getLogger(__name__)

HUB_PROBE_TIMEOUT_S = 3.0

# Small files that decide what a transformers model computes; their bytes go
# into the model id together with the weights' sha256.
_ID_FILES = (
    "config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
)
# What we fetch from the hub: never the pickled pytorch_model.bin.
_HUB_PATTERNS = [*_ID_FILES, "model*.safetensors", "model.safetensors.index.json"]
MODEL_HINT = (
    "Set TRAUM_CLAP_MODEL to a local model directory (config.json, model.safetensors and the "
    "processor files), or run once with internet access and without HF_HUB_OFFLINE so the "
    "model is downloaded into the Hugging Face cache."
)


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def hub_offline() -> bool:
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE, read now (huggingface_hub reads it at import)."""
    if _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE"):
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except Exception:  # pragma: no cover - huggingface_hub is a hard dependency
        return False


# --------------------------------------------------------------------------- content-hash identity


_digest_cache: dict[tuple, str] = {}
_digest_lock = threading.Lock()


def file_sha256(path: Path) -> str:
    """sha256 of a file, memoised per (path, size, mtime).

    A file in the Hugging Face cache is a symlink to ``blobs/<sha256>`` (the
    LFS object id), so its hash is read from the link instead of recomputed.
    """
    real = Path(os.path.realpath(path))
    if path.is_symlink() and re.fullmatch(r"[0-9a-f]{64}", real.name):
        return real.name
    stat = real.stat()
    key = (str(real), stat.st_size, stat.st_mtime_ns)
    with _digest_lock:
        if key in _digest_cache:
            return _digest_cache[key]
    with open(real, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    with _digest_lock:
        _digest_cache[key] = digest
    return digest


_content_cache: dict[tuple, str] = {}


def transformers_content_hash(directory: Path) -> str:
    """12 hex chars over the config/processor/tokenizer bytes and the weights' sha256.

    Memoised on the files' sizes and mtimes, so a health view can ask often."""
    files = [directory / n for n in _ID_FILES if (directory / n).is_file()]
    weights = sorted(directory.glob("*.safetensors"))
    signature = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files + weights)
    with _digest_lock:
        if signature in _content_cache:
            return _content_cache[signature]
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    for p in weights:
        h.update(p.name.encode() + b"\0" + file_sha256(p).encode() + b"\0")
    digest = h.hexdigest()[:12]
    with _digest_lock:
        _content_cache[signature] = digest
    return digest


def check_model_dir(directory: Path, *, what: str) -> None:
    """Refuse directories we cannot (or will not) load, with a readable reason."""
    if not directory.is_dir():
        raise ModelUnavailableError(f"{what} is not a directory.", hint=MODEL_HINT)
    if not (directory / "config.json").is_file():
        raise ModelUnavailableError(
            f"{what} has no config.json, so it is not a transformers model directory.",
            hint=MODEL_HINT,
        )
    if not any(directory.glob("*.safetensors")):
        if any((directory / n).exists() for n in ("pytorch_model.bin", "pytorch_model.bin.index.json")):
            raise ModelUnavailableError(
                f"{what} only has pickled weights (pytorch_model.bin); the engine loads safetensors only, "
                "because unpickling a checkpoint can run arbitrary code.",
                hint="Convert it once with ClapModel.from_pretrained(dir).save_pretrained(new_dir) in a trusted "
                "environment and set TRAUM_CLAP_MODEL to new_dir (or TRAUM_CLAP_REVISION to a revision that "
                "has model.safetensors).",
            )
        raise ModelUnavailableError(f"{what} has no model.safetensors.", hint=MODEL_HINT)


# --------------------------------------------------------------------------- the hub


def probe_hub(repo_id: str, *, revision: str | None = None, timeout: float = HUB_PROBE_TIMEOUT_S) -> str | None:
    """Ask the hub about a repo with a hard deadline; None if reachable and present,
    else a short reason. Runs in a daemon thread because DNS resolution is not
    covered by HTTP timeouts and can hang far longer on a machine without internet."""
    result: dict[str, str | None] = {}

    def ask() -> None:
        try:
            from huggingface_hub import HfApi
            from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

            try:
                HfApi().model_info(repo_id, revision=revision, timeout=timeout)
                result["reason"] = None
            except RevisionNotFoundError:
                result["reason"] = f"revision {revision!r} does not exist in {repo_id!r} on the hub"
            except RepositoryNotFoundError:
                result["reason"] = f"{repo_id!r} was not found on the hub (or it is private or gated)"
        except Exception as exc:  # network errors come from httpx and differ by version
            result["reason"] = f"the Hugging Face hub is unreachable ({type(exc).__name__}: {exc})"

    thread = threading.Thread(target=ask, name="hf-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    if thread.is_alive():
        return f"the Hugging Face hub did not answer within {timeout:.0f} s"
    return result.get("reason", "the hub probe failed")


def ensure_downloadable(repo_id: str, *, revision: str | None, setting: str) -> None:
    """Fail fast (offline flag, or no answer within a few seconds) before a download."""
    if hub_offline():
        raise ModelUnavailableError(
            f"{repo_id!r} is not a local path, nor in the local Hugging Face cache, and HF_HUB_OFFLINE is set, "
            f"so it cannot be downloaded ({setting}).",
            hint=MODEL_HINT if setting == "TRAUM_CLAP_MODEL" else f"Set {setting} to a local file.",
        )
    reason = probe_hub(repo_id, revision=revision)
    if reason is not None:
        raise ModelUnavailableError(
            f"{repo_id!r} is not a local path, nor in the local Hugging Face cache, and cannot be downloaded: "
            f"{reason} ({setting}).",
            hint=(MODEL_HINT if setting == "TRAUM_CLAP_MODEL" else f"Set {setting} to a local file.")
            + " Set HF_HUB_OFFLINE=1 to skip the network check entirely.",
        )


def looks_like_path(value: str) -> bool:
    return value.startswith(("/", ".", "~")) or "\\" in value or value.count("/") > 1


def cached_hub_snapshot(repo_id: str, revision: str | None) -> Path | None:
    """The cached snapshot directory if it holds loadable weights; never touches the network."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import IncompleteSnapshotError

    try:
        path = Path(
            snapshot_download(repo_id, revision=revision, local_files_only=True, allow_patterns=_HUB_PATTERNS)
        )
    except IncompleteSnapshotError as exc:
        path = Path(exc.snapshot_path)
    except Exception:
        return None
    if (path / "config.json").is_file() and any(path.glob("*.safetensors")):
        return path
    return None


def transformers_source(settings: Settings) -> tuple[Path | None, str]:
    """(model directory, display name) for settings.clap_model, without any network:
    the directory is None when a hub model is not cached yet."""
    value = settings.clap_model.strip()
    local = Path(value).expanduser()
    if local.exists():
        local = local.resolve()
        return local, f"local:{local.name}"
    if looks_like_path(value):
        raise ModelUnavailableError(
            f"the local CLAP model directory {str(local)!r} does not exist (TRAUM_CLAP_MODEL).", hint=MODEL_HINT
        )
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", value):
        raise ModelUnavailableError(
            f"TRAUM_CLAP_MODEL={value!r} is neither an existing local directory nor a hub id.", hint=MODEL_HINT
        )
    return cached_hub_snapshot(value, settings.clap_revision), value


def download_hub_model(repo_id: str, *, revision: str | None) -> Path:
    """Download after ensure_downloadable said yes; huggingface_hub shows tqdm progress."""
    from huggingface_hub import snapshot_download

    log.info("downloading CLAP model %s into the Hugging Face cache", repo_id)
    try:
        path = snapshot_download(repo_id, revision=revision, allow_patterns=_HUB_PATTERNS)
    except Exception as exc:
        raise ModelUnavailableError(
            f"downloading {repo_id!r} failed: {type(exc).__name__}: {exc}", hint=MODEL_HINT
        ) from exc
    return Path(path)
