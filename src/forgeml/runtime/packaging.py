"""model.tar.gz and output.tar.gz, as SageMaker packs them."""

from __future__ import annotations

import tarfile
from collections.abc import Iterable
from pathlib import Path


def make_tarball(sources: Iterable[Path], target: Path) -> Path:
    """Tar the contents of each folder into one ``.tar.gz`` (later hosts' files overwrite earlier ones)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, "w:gz", compresslevel=6) as archive:
        for folder in sources:
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*")):
                archive.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return target


def extract_tarball(archive: Path, target: Path) -> None:
    """Extract safely: members may not escape ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        tar.extractall(target, filter="data")
