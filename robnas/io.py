"""File helpers. Writes are atomic (a temp file in the target's folder, then os.replace, so
readers never see half a file); JSON reads fail with one line that says what to do."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from robnas.errors import ConfigError, RobnasError


def _file_mode() -> int:
    """The mode `open()` would give a new file: mkstemp's temp files are 0600, and results must
    stay readable by the group and others as the user's umask allows (shared clusters)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


# read once, at import, so no thread ever sees the umask changed
FILE_MODE = _file_mode()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(path: str | os.PathLike[str], obj: Any) -> None:
    import torch  # here, so reading JSON never imports torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def read_json(
    path: str | os.PathLike[str],
    *,
    hint: str = "fix or delete the file",
    error: type[RobnasError] = ConfigError,
) -> Any:
    """The parsed JSON at `path`; `error` (one line ending in `hint`) if missing or unreadable."""
    file = Path(path)
    if not file.is_file():
        raise error(f"{file} not found; {hint}")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except OSError as err:
        raise error(f"cannot read {file}: {err.strerror}; {hint}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise error(f"{file} is not valid JSON ({err}); {hint}") from None


def read_json_object(
    path: str | os.PathLike[str],
    *,
    hint: str = "fix or delete the file",
    error: type[RobnasError] = ConfigError,
) -> dict[str, Any]:
    """`read_json` that also demands a JSON object at the top."""
    data = read_json(path, hint=hint, error=error)
    if not isinstance(data, dict):
        raise error(f"{path} must hold a JSON object, not {type(data).__name__}; {hint}")
    return data
