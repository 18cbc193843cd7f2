"""Writing the security files with the right modes: secrets readable by their owner only.

Private keys are created 0600 (and forced to 0600 if they existed), folders holding them 0700; public files
(certificates, profiles, signed documents) 0644. Every file is written whole to a temporary name in the
same folder and renamed, so a reader never sees half a key.
"""

from __future__ import annotations

import os
from pathlib import Path

SECRET_MODE = 0o600
PUBLIC_MODE = 0o644
PRIVATE_DIR_MODE = 0o700
PUBLIC_DIR_MODE = 0o755


def make_dir(path: Path, *, private: bool = False) -> Path:
    """Create ``path`` (and parents); a private folder is 0700 even if it existed."""
    path.mkdir(parents=True, exist_ok=True)
    if private:
        os.chmod(path, PRIVATE_DIR_MODE)
    return path


def write_file(path: Path, data: bytes | str, *, secret: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically, mode 0600 for a secret, else 0644."""
    mode = SECRET_MODE if secret else PUBLIC_MODE
    payload = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed the mode os.open was given
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return path


def symlink(target: str, link: Path) -> Path:
    """``link`` -> ``target`` (a relative path, as SROS2's keystore has them), replacing an old link."""
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)
    return link
