"""Several machines on one study (``made tune --storage URL``), and one best model across them
(``--share DIR``).

Machines started at once race to create Optuna's tables in a fresh database; :func:`create_tables`
lets the late ones wait for the first.

Each machine trains its trials in its own ``RUN_DIR/trials/N``; with a shared folder (a network file
system every machine mounts) each finished trial is also published there, as ``DIR/trials/N``, before
the study records it as complete. Trial numbers are unique within a study, so the machines never write
the same folder, and every complete trial of the study can then be read by every machine: the end of a
tune, and ``made tune --collect``, choose among all of them by validation NLL alone.

A trial is published whole or not at all: it is copied into a temporary sibling folder first and
renamed into place, so a machine reading the shared folder never sees half a trial.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

from ..io.run import copy_run, is_finished, read_metrics, trial_folder, write_metrics
from .search import unopenable

__all__ = ["create_tables", "machine_seed", "publish_trial", "shared_trials"]

SCHEMA_TRIES = 6  # half a second apart: creating the tables takes a fraction of that


def create_tables(url: str) -> None:
    """Create Optuna's tables in the database at ``url`` unless they are there. Two machines creating them
    at once collide (one's CREATE TYPE or CREATE TABLE fails on the other's, Optuna's issue 1092), so the
    one that collides tries again once the other is done."""
    import optuna
    import sqlalchemy.exc

    for attempt in range(SCHEMA_TRIES):
        try:
            optuna.storages.RDBStorage(url).engine.dispose()
            return
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == SCHEMA_TRIES - 1:
                raise
            time.sleep(0.5)
        except sqlalchemy.exc.SQLAlchemyError as err:  # no server there, no such file, refused login ...
            raise unopenable("--storage", err) from None


def machine_seed(seed: int, key: str) -> int:
    """The sampler's seed on one machine of a shared study: ``seed`` mixed with the machine's budget key
    (its host name and run folder). Machines given the same ``--seed`` would otherwise draw the same
    random settings, one after the other, in the study's first trials."""
    return zlib.crc32(f"{seed}:{key}".encode())


def publish_trial(folder: str | Path, share: str | Path, number: int) -> Path:
    """Copy the finished run of trial ``number`` from ``folder`` into the shared folder ``share``; return
    where it now is. Refuses a shared folder that holds that trial already (one of another study)."""
    dest = trial_folder(share, number)
    if dest.exists():
        raise ValueError(f"--share {share}: {dest} holds a trial already; give each study its own shared folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{number}.{socket.gethostname()}.{uuid.uuid4().hex}")
    partial.mkdir()
    try:
        copy_run(folder, partial)
        write_metrics(partial, read_metrics(folder))
        os.rename(partial, dest)  # atomic on one file system; fails if another machine took the name meanwhile
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # this machine's own half copy
        raise
    return dest


def shared_trials(study: Any, share: str | Path) -> list[Any]:
    """The complete trials of ``study``, from every machine, whose published run is in ``share``: best
    validation NLL first."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    found = [t for t in done if is_finished(trial_folder(share, t.number))]
    return sorted(found, key=lambda t: (t.value, t.number))
