r"""Paths as the benchmarks find and write them: data beside the checkout, and paths relative to the repository.

A results file (a JSON line, a report) names its data and run folders relative to the repository root
(``../shared/data/debd/msnbc.npz``, ``benchmarks/debd/runs/msnbc``), never one machine's absolute paths,
so its commands run again from the root of any checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def default_data_dir() -> Path:
    """``$MADE_DATA_DIR``, else the first ``shared/data`` found in the checkout or a folder above it."""
    if os.environ.get("MADE_DATA_DIR"):
        return Path(os.environ["MADE_DATA_DIR"])
    for folder in (REPO, *REPO.parents):
        if (folder / "shared" / "data").is_dir():
            return folder / "shared" / "data"
    return REPO.parent / "shared" / "data"


def shown(path: str | Path) -> str:
    """``path`` as a results file writes it: relative to the repository root."""
    return os.path.relpath(Path(path).resolve(), REPO)
