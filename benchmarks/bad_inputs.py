r"""Feed bad input to ``made`` and write down what each gets: the table of docs/BAD_INPUTS.md.

Every case builds its bad file (or run folder) in a fresh temporary folder, runs
the command line in this process and records the exit status, what was printed
on stderr (the folder's path shown as ``DIR``) and whether anything was written.
The library cases call ``MADE.log_prob`` and record the exception.

    python benchmarks/bad_inputs.py > docs/BAD_INPUTS.md

tests/cli/test_bad_inputs.py runs the same cases and checks them against the table.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import platform
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file

from made import MADE
from made.cli import main
from made.fast.dispatch import fast_path
from made.model.distribution import MADEDistribution
from made.model.mixture import Mixture, em_weights
from made.sklearn import MADEDensity

TRAIN = ["--hidden", "8", "--epochs", "1", "--quiet"]


@dataclass(frozen=True)
class Case:
    """A bad input: ``make(folder)`` writes it and returns the command-line arguments."""

    what: str
    make: Callable[[Path], list[str]]


@dataclass(frozen=True)
class Outcome:
    what: str
    command: str
    status: int | str
    message: str
    written: str


def _binary(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, 2, (rows, cols)).astype(np.uint8)


def _train_on(name: str, content: bytes | str | None = None, array: np.ndarray | None = None) -> Callable:
    """A case that writes ``name`` (bytes, text or an array) and trains on it."""

    def make(folder: Path) -> list[str]:
        path = folder / name
        if array is not None:
            np.save(path, array, allow_pickle=True)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            path.write_text(content)
        return ["train", "--data", str(path), "--out", str(folder / "run"), *TRAIN]

    return make


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _lying_header(rows: int) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|u1", "fortran_order": False, "shape": (rows, 4)})
    return buffer.getvalue() + bytes(40)


def _zip_member(folder: Path) -> list[str]:
    with zipfile.ZipFile(folder / "notarray.npz", "w") as archive:
        archive.writestr("train.npy", b"just some bytes")
    return ["train", "--data", str(folder / "notarray.npz"), "--out", str(folder / "run"), *TRAIN]


def _wide_csv(folder: Path) -> list[str]:
    row = ",".join(["0", "1"] * 500_000)
    (folder / "wide.csv").write_text("\n".join([row] * 3) + "\n")
    return ["train", "--data", str(folder / "wide.csv"), "--out", str(folder / "run"), "--hidden", "1000", "--quiet"]


def _unreadable(folder: Path) -> list[str]:
    path = folder / "locked.csv"
    path.write_text("0,1\n1,0\n1,1\n")
    path.chmod(0)
    return ["train", "--data", str(path), "--out", str(folder / "run"), *TRAIN]


def _folder_as_data(folder: Path) -> list[str]:
    (folder / "adir.csv").mkdir()
    return ["train", "--data", str(folder / "adir.csv"), "--out", str(folder / "run"), *TRAIN]


def _out_is_a_file(folder: Path) -> list[str]:
    np.save(folder / "ok.npy", _binary(30, 4))
    (folder / "run").write_text("a file, not a folder")
    return ["train", "--data", str(folder / "ok.npy"), "--out", str(folder / "run"), *TRAIN]


def _run(folder: Path) -> Path:
    """A small finished run to tamper with."""
    np.save(folder / "ok.npy", _binary(30, 4))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["train", "--data", str(folder / "ok.npy"), "--out", str(folder / "run"), *TRAIN]) == 0
    return folder / "run"


def _edit_config(edit: Callable[[dict], None]) -> Callable:
    def make(folder: Path) -> list[str]:
        run = _run(folder)
        config = json.loads((run / "config.json").read_text())
        edit(config)
        (run / "config.json").write_text(json.dumps(config))
        return ["eval", str(run)]

    return make


def _corrupt_config(folder: Path) -> list[str]:
    run = _run(folder)
    (run / "config.json").write_text("{oops")
    return ["eval", str(run)]


def _replace_weights(write: Callable[[Path], None]) -> Callable:
    def make(folder: Path) -> list[str]:
        run = _run(folder)
        write(run / "model.safetensors")
        return ["eval", str(run)]

    return make


def _flip_mask(path: Path) -> None:
    from safetensors.torch import load_file

    tensors = load_file(path)
    tensors["hidden.0.mask"][0, 0] = ~tensors["hidden.0.mask"][0, 0]
    save_file(tensors, path)


def _wrong_shape(path: Path) -> None:
    from safetensors.torch import load_file

    save_file({**load_file(path), "output.bias": torch.zeros(9)}, path)


def _pickle_weights(path: Path) -> None:
    torch.save({"output.weight": torch.zeros(4, 8)}, path)  # a pickle, as torch.save writes


def _tamper_args(folder: Path) -> list[str]:
    run = _run(folder)
    (run / "metrics.json").unlink()  # make it look interrupted
    args = json.loads((run / "args.json").read_text())
    args["options"]["hidden"] = ["8"]
    (run / "args.json").write_text(json.dumps(args))
    return ["train", "--resume", str(run)]


def _resume_with_options(folder: Path) -> list[str]:
    run = _run(folder)
    (run / "metrics.json").unlink()
    return ["train", "--resume", str(run), "--epochs", "5"]


def _columns_case(
    schema_arg: str, test: np.ndarray, train: np.ndarray | None = None, schema_file: str | None = None
) -> Callable:
    """Train with ``--schema`` on an .npz whose test split holds ``test`` (and optionally a schema file)."""

    def make(folder: Path) -> list[str]:
        base = np.tile(np.array([[0, 1, 1, 0, 0], [1, 2, 0, 1, 0], [0, 1, 0, 0, 1]], np.float32), (10, 1))
        data = base if train is None else train
        np.savez(folder / "cols.npz", train=data, valid=data[:3], test=test)
        spec = schema_arg
        if schema_file is not None:
            (folder / "schema.json").write_text(schema_file)
            spec = str(folder / "schema.json")
        return ["train", "--data", str(folder / "cols.npz"), "--schema", spec, "--out", str(folder / "run"), *TRAIN]

    return make


def _edit_schema(edit: Callable[[list], None]) -> Callable:
    def make(folder: Path) -> list[str]:
        rows = np.c_[_binary(30, 2), np.random.RandomState(0).randn(30)]
        np.save(folder / "real.npy", rows)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert (
                main(
                    [
                        "train",
                        "--data",
                        str(folder / "real.npy"),
                        "--schema",
                        "auto",
                        "--out",
                        str(folder / "run"),
                        *TRAIN,
                    ]
                )
                == 0
            )
        config = json.loads((folder / "run" / "config.json").read_text())
        edit(config["schema"])
        (folder / "run" / "config.json").write_text(json.dumps(config))
        return ["eval", str(folder / "run")]

    return make


def _sample_without_context(folder: Path) -> list[str]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["train", "--context", "labels", "--out", str(folder / "run"), *TRAIN]) == 0
    return ["sample", str(folder / "run"), "-n", "4"]


def _categorical_on_real(folder: Path) -> list[str]:
    """A categorical schema on a real column: every training value is a category, the test values unseen."""
    rng = np.random.RandomState(0)
    train = rng.randn(300, 1)
    np.savez(folder / "real.npz", train=train, valid=train[:3], test=rng.randn(3, 1))
    (folder / "schema.json").write_text('[{"type": "categorical"}]')
    return [
        "train",
        "--data",
        str(folder / "real.npz"),
        "--schema",
        str(folder / "schema.json"),
        "--out",
        str(folder / "run"),
        *TRAIN,
    ]


def _impute_without_context(folder: Path) -> list[str]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["train", "--context", "labels", "--masks", "2", "--out", str(folder / "run"), *TRAIN]) == 0
    rows = np.zeros((2, 64))
    rows[:, 32:] = np.nan
    np.save(folder / "half.npy", rows)
    return ["impute", str(folder / "run"), "--data", str(folder / "half.npy")]


def _impute_unseen_category(folder: Path) -> list[str]:
    rng = np.random.RandomState(0)
    np.savetxt(folder / "m.csv", np.c_[rng.choice([10, 20, 30], 60), rng.randn(60)], fmt="%g", delimiter=",")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert (
            main(
                [
                    "train",
                    "--data",
                    str(folder / "m.csv"),
                    "--schema",
                    "auto",
                    "--masks",
                    "2",
                    "--out",
                    str(folder / "run"),
                    *TRAIN,
                ]
            )
            == 0
        )
    (folder / "q.csv").write_text("x,y\n10,\n2,\n")
    return ["impute", str(folder / "run"), "--data", str(folder / "q.csv")]


_FOUR_BINARY = ", ".join(['{"type": "binary"}'] * 4)  # after one categorical column: a schema of _columns_case's 5


def _killed(folder: Path) -> Path:
    """A run that looks killed during training: its checkpoint is there, its results are not."""
    run = _run(folder)
    for name in ("metrics.json", "config.json", "model.safetensors"):
        (run / name).unlink()
    return run


def _link_checkpoint(folder: Path) -> list[str]:
    run = _killed(folder)
    (folder / "victim").mkdir()
    (folder / "victim" / ".notes.tmp").write_text("the user's")
    for path in (run / "checkpoint").iterdir():
        path.unlink()
    (run / "checkpoint").rmdir()
    (run / "checkpoint").symlink_to("../victim")
    return ["train", "--resume", str(run)]


def _edit_progress(folder: Path) -> list[str]:
    run = _killed(folder)
    record = json.loads((run / "checkpoint" / "state.json").read_text())
    record["progress"]["epoch"] = -5
    (run / "checkpoint" / "state.json").write_text(json.dumps(record))
    return ["train", "--resume", str(run)]


def _fifo_weights(folder: Path) -> list[str]:
    run = _run(folder)
    (run / "model.safetensors").unlink()
    os.mkfifo(run / "model.safetensors")
    return ["eval", str(run)]


def _log_is_a_folder(folder: Path) -> list[str]:
    (folder / "run" / "log.jsonl").mkdir(parents=True)
    return ["train", "--out", str(folder / "run"), *TRAIN]


CLI_CASES = [
    Case("`.npz` cut in half", _train_on("cut.npz", _npz_bytes(x=_binary(50, 4))[:300])),
    Case("`.npz` that is not a zip archive", _train_on("junk.npz", b"PK\x03\x04 this is not a zip file")),
    Case("`.npz` member that is not an array", _zip_member),
    Case("`.npy` cut short (data missing)", _train_on("cut.npy", _npy_bytes(_binary(50, 4))[:-10])),
    Case("`.npy` header claiming 10^12 rows", _train_on("huge.npy", _lying_header(10**12))),
    Case("`.npy` of Python objects (a pickle)", _train_on("objects.npy", array=np.array([{"a": 1}] * 4, dtype=object))),
    Case("`.npy` of complex numbers", _train_on("complex.npy", array=np.ones((30, 4), dtype=complex))),
    Case("`.npy` of strings", _train_on("strings.npy", array=np.array([["0", "1"]] * 30))),
    Case("`.npy` of dates", _train_on("dates.npy", array=np.zeros((30, 4), dtype="datetime64[s]"))),
    Case("3-D `.npy`", _train_on("cube.npy", array=np.zeros((30, 4, 2)))),
    Case("empty `.npy` file (0 bytes)", _train_on("empty.npy", b"")),
    Case(
        "`.npz` whose splits differ in width",
        _train_on("widths.npz", _npz_bytes(train=_binary(20, 4), valid=_binary(5, 3), test=_binary(5, 4))),
    ),
    Case(
        "`.npz` with an empty split",
        _train_on("nosplit.npz", _npz_bytes(train=_binary(20, 4), valid=_binary(0, 4), test=_binary(5, 4))),
    ),
    Case(
        "`.npz` with neither split keys nor one matrix",
        _train_on("keys.npz", _npz_bytes(a=_binary(9, 2), b=_binary(9, 2))),
    ),
    Case("empty `.csv`", _train_on("empty.csv", "")),
    Case("`.csv` with only a header line", _train_on("header.csv", "a,b,c\n")),
    Case("`.csv` cell that is not a number", _train_on("word.csv", "0,1\n1,zero\n1,1\n")),
    Case("`.csv` with a ragged row", _train_on("ragged.csv", "0,1\n1,0,1\n1,1\n")),
    Case("`.csv` with an empty (missing) cell", _train_on("missing.csv", "0,1\n1,\n1,1\n0,0\n")),
    Case("`.csv` with `inf`", _train_on("inf.csv", "0,1\ninf,0\n1,1\n0,0\n")),
    Case("`.csv` with 1e400 (overflows to inf)", _train_on("big.csv", "0,1\n1e400,0\n1,1\n0,0\n")),
    Case("`.csv` value outside {0, 1} (0.5)", _train_on("half.csv", "0,1\n1,0.5\n1,1\n0,0\n")),
    Case("`.csv` value outside {0, 1} (-1)", _train_on("minus.csv", "0,1\n1,-1\n1,1\n0,0\n")),
    Case("`.csv` that is not text", _train_on("binary.csv", bytes(range(256)))),
    Case("`.csv` with one 200 000-character cell", _train_on("longcell.csv", "0,1\n" + "1" * 200_000 + ",0\n")),
    Case("`.csv` with 10^6 columns (3 rows), --hidden 1000", _wide_csv),
    Case("too few rows to split (2)", _train_on("two.csv", "0,1\n1,0\n")),
    Case("data file that does not exist", lambda f: ["train", "--data", str(f / "nope.npy"), "--out", str(f / "run")]),
    Case("data path that is a folder", _folder_as_data),
    Case("data file without read permission", _unreadable),
    Case("unsupported file type (.txt)", _train_on("data.txt", "0,1\n")),
    Case("--out names an existing file", _out_is_a_file),
    Case("--batch-size 0", lambda f: ["train", "--out", str(f / "run"), "--batch-size", "0", "--quiet"]),
    Case("--masks 0", lambda f: ["train", "--out", str(f / "run"), "--masks", "0", "--quiet"]),
    Case("eval of a folder that is not a run", lambda f: ["eval", str(f)]),
    Case("config.json that is not JSON", _corrupt_config),
    Case("config.json of an unknown format_version", _edit_config(lambda c: c.update(format_version=7))),
    Case("config.json with a number written as a string", _edit_config(lambda c: c["model"].update(num_inputs="4"))),
    Case("config.json with NaN", _edit_config(lambda c: c["model"].update(seed=float("nan")))),
    Case("config.json with true for an integer", _edit_config(lambda c: c["model"].update(seed=True))),
    Case("config.json with an unknown activation", _edit_config(lambda c: c["model"].update(activation="gelu"))),
    Case("config.json with a missing model key", _edit_config(lambda c: c["model"].pop("direct"))),
    Case("config.json claiming 10^9 hidden units", _edit_config(lambda c: c["model"].update(hidden_sizes=[10**9]))),
    Case("config.json with an unknown eval dtype", _edit_config(lambda c: c["eval"].update(dtype="load"))),
    Case(
        "--schema auto: a test value never seen in training",
        _columns_case("auto", np.array([[0, 5, 1, 0, 0]], np.float32)),
    ),
    Case(
        "--schema onehot: a test code never seen in training",
        _columns_case("onehot", np.array([[0, 1, 1, 1, 0]], np.float32)),
    ),
    Case(
        "--schema auto: a real column constant in training",
        _columns_case("auto", np.zeros((1, 2), np.float32), train=np.tile([[0.5, 0.0], [0.5, 1.0]], (10, 1))),
    ),
    Case("--schema FILE that is not JSON", _columns_case("", np.zeros((1, 5), np.float32), schema_file="[{oops")),
    Case(
        "--schema FILE for 2 columns, data with 5",
        _columns_case("", np.zeros((1, 5), np.float32), schema_file='[{"type": "real"}, {"type": "binary"}]'),
    ),
    Case(
        "--schema FILE with an unknown column type",
        _columns_case("", np.zeros((1, 5), np.float32), schema_file='[{"type": "ordinal"}]'),
    ),
    Case(
        "--context labels on data without labels",
        lambda f: [*_columns_case("auto", np.zeros((1, 5), np.float32))(f), "--context", "labels"],
    ),
    Case("sample of a class-conditional run without --context", _sample_without_context),
    Case("config.json with a schema std of 0", _edit_schema(lambda s: s[2].update(std=0.0))),
    Case("config.json whose schema does not match the model", _edit_schema(lambda s: s.pop())),
    Case("model.safetensors that is a pickle (torch.save)", _replace_weights(_pickle_weights)),
    Case("model.safetensors cut short", _replace_weights(lambda p: p.write_bytes(p.read_bytes()[:-20]))),
    Case("model.safetensors with a wrong shape", _replace_weights(_wrong_shape)),
    Case("model.safetensors with a mask that is not the seed's", _replace_weights(_flip_mask)),
    Case("--resume with a tampered args.json", _tamper_args),
    Case("--resume with another option", _resume_with_options),
    # issue 12, part A: the data path
    Case("`.csv` whose first row mixes numbers and text (`1,O`)", _train_on("o.csv", "1,O\n1,0\n1,1\n0,0\n")),
    Case("`.csv` with a trailing comma on every line", _train_on("comma.csv", "0,1,\n1,0,\n1,1,\n0,0,\n")),
    Case("`.csv` with a blank line between rows", _train_on("blank.csv", "0,1\n\n1,0\n1,1\n0,0\n")),
    Case("`.csv` value 1e-50 in a binary column", _train_on("tiny.csv", "0,1\n1,0\n1e-50,1\n0,0\n")),
    Case("`.csv` value 0.99999999999 in a binary column", _train_on("near.csv", "0,1\n1,0.99999999999\n1,1\n0,0\n")),
    Case(
        "`.npy` value 7 in row 25 of a binary array",
        _train_on("seven.npy", array=np.r_[_binary(24, 3), [[0, 7, 1]], _binary(5, 3)]),
    ),
    Case(
        '--schema FILE with "categories": "3"',
        _columns_case(
            "",
            np.zeros((1, 5), np.float32),
            schema_file=f'[{{"type": "categorical", "categories": "3"}}, {_FOUR_BINARY}]',
        ),
    ),
    Case(
        '--schema FILE with "categories": 3.5',
        _columns_case(
            "",
            np.zeros((1, 5), np.float32),
            schema_file=f'[{{"type": "categorical", "categories": 3.5}}, {_FOUR_BINARY}]',
        ),
    ),
    Case("--schema FILE categorical on a real column (a test value unseen)", _categorical_on_real),
    Case("--components 0", lambda f: [*_columns_case("auto", np.zeros((1, 5), np.float32))(f), "--components", "0"]),
    Case("impute of a class-conditional run without --context", _impute_without_context),
    Case("impute with a category value never seen in training", _impute_unseen_category),
    # run folders, training and robustness (issue 12, part B)
    Case("eval --batch-size -1", lambda f: ["eval", str(_run(f)), "--batch-size", "-1"]),
    Case("eval --ensemble 10^7", lambda f: ["eval", str(_run(f)), "--ensemble", "10000000"]),
    Case("config.json with eval.batch_size 0", _edit_config(lambda c: c["eval"].update(batch_size=0))),
    Case("config.json with eval.ensemble 10^7", _edit_config(lambda c: c["eval"].update(ensemble=10**7))),
    Case("--hidden -5", lambda f: ["train", "--out", str(f / "run"), "--hidden", "-5", "--quiet"]),
    Case("--seed 1e23", lambda f: ["train", "--out", str(f / "run"), "--seed", "1e23", "--quiet"]),
    Case("--lr inf", lambda f: ["train", "--out", str(f / "run"), "--lr", "inf", "--quiet"]),
    Case("--device meta", lambda f: ["train", "--out", str(f / "run"), "--device", "meta", "--quiet"]),
    Case(
        "masks --inputs 100000 --hidden 3",
        lambda f: ["masks", "--inputs", "100000", "--hidden", "3", "--out", str(f / "m.png")],
    ),
    Case("--resume with checkpoint/ a link out of the run folder", _link_checkpoint),
    Case("--resume with state.json epoch -5", _edit_progress),
    Case("eval of a run killed during training", lambda f: ["eval", str(_killed(f))]),
    Case("model.safetensors that is a FIFO", _fifo_weights),
    Case("a folder where log.jsonl goes", _log_is_a_folder),
]

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
MODEL = MADE(4, [8])


def _nan_context() -> object:
    return MADE(4, [8], context_size=2).log_prob(torch.zeros(1, 4), torch.tensor([[float("nan"), 0.0]]))


def _far_gaussian() -> object:
    return float(MADE(1, [4], family="gaussian").log_prob(torch.tensor([[1e30]])))


def _pool_of_another_seed() -> object:
    return MADE(4, [8], num_masks=3, seed=1).load_state_dict(MADE(4, [8], num_masks=3, seed=2).state_dict())


def _ensemble_gradient() -> object:
    model = MADE(6, [16], num_masks=3).double()
    with fast_path("off"):
        model.log_prob(torch.randint(0, 2, (5, 6)).double(), ensemble=3).sum().backward()
    return "gradients computed"


# Each case calls the library; the table records what it raises, or what it returns.
LIBRARY_CASES = [
    ("x of shape [3] (1-D)", lambda: MODEL.log_prob(torch.zeros(3))),
    ("x of shape [2, 5] (wrong D)", lambda: MODEL.log_prob(torch.zeros(2, 5))),
    ("x of dtype int64", lambda: MODEL.log_prob(torch.zeros(2, 4, dtype=torch.long))),
    ("x of dtype float64 (model in float32)", lambda: MODEL.log_prob(torch.zeros(2, 4, dtype=torch.float64))),
    ("x of dtype complex64", lambda: MODEL.log_prob(torch.zeros(2, 4, dtype=torch.complex64))),
    ("x with NaN", lambda: MODEL.log_prob(torch.tensor([[0.0, float("nan"), 1.0, 0.0]]))),
    ("x with 0.5 (Bernoulli needs 0/1)", lambda: MODEL.log_prob(torch.tensor([[0.0, 0.5, 1.0, 0.0]]))),
    ("x a numpy array", lambda: MODEL.log_prob(np.zeros((2, 4), np.float32))),
    ("x a list", lambda: MODEL.log_prob([[0.0, 1.0, 0.0, 1.0]])),
    ("`MADE(4, [-2])` (a negative width)", lambda: MADE(4, [-2])),
    ("`sample(-1)`", lambda: MODEL.sample(-1)),
    ("`sample(2.5)`", lambda: MODEL.sample(2.5)),
    ("`sample(True)`", lambda: MODEL.sample(True)),
    ("a NaN context (`MADE(4, [8], context_size=2)`)", _nan_context),
    ("a Gaussian input of 1e30 (`MADE(1, [4], family='gaussian')`)", _far_gaussian),
    ("`load_state_dict` of a pool drawn from another seed", _pool_of_another_seed),
    ("gradient of `log_prob(x, ensemble=3)` on the plain path", _ensemble_gradient),
]


# ------------------------------------------------ round 3: values, columns and mixtures (issue 25)
ROUND3_VALUES = "Round 3: values, columns and mixtures"


def _ids_npy(folder: Path) -> list[str]:
    np.save(folder / "ids.npy", np.c_[np.array([2**53 + 1, 2**53 + 3] * 15, dtype=np.int64), np.arange(30) % 2])
    return ["train", "--data", str(folder / "ids.npy"), "--schema", "auto", "--out", str(folder / "run"), *TRAIN]


def _ids_csv(folder: Path) -> list[str]:
    (folder / "ids.csv").write_text("id,x\n" + "".join(f"900719925474099{i % 10},{i % 2}\n" for i in range(30)))
    return ["train", "--data", str(folder / "ids.csv"), "--schema", "auto", "--out", str(folder / "run"), *TRAIN]


def _impute_big_observed(folder: Path) -> list[str]:
    rng = np.random.RandomState(0)
    np.save(folder / "train.npy", np.c_[rng.randint(0, 3, 60), rng.randint(0, 1000, 60)].astype(np.int64))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        args = ["--schema", "auto", "--masks", "2", "--out", str(folder / "run"), *TRAIN]
        assert main(["train", "--data", str(folder / "train.npy"), *args]) == 0
    np.save(folder / "q.npy", np.array([[1, 5], [2, 2**53 + 3]], dtype=np.int64))
    np.save(folder / "m.npy", np.array([[1, 0], [1, 0]]))
    return ["impute", str(folder / "run"), "--data", str(folder / "q.npy"), "--mask", str(folder / "m.npy")]


def _huge_column(folder: Path) -> list[str]:
    rng = np.random.RandomState(0)
    np.save(folder / "big.npy", np.c_[rng.randn(40), rng.randn(40) * 1e200])
    return ["train", "--data", str(folder / "big.npy"), "--schema", "auto", "--out", str(folder / "run"), *TRAIN]


def _unscorable_validation(fit: bool) -> Callable:
    def make(folder: Path) -> list[str]:
        rng = np.random.RandomState(0)
        valid = rng.randn(6, 2)
        valid[3, 0] = 1e30  # every member's log p is -inf
        np.savez(folder / "d.npz", train=rng.randn(60, 2), valid=valid, test=rng.randn(6, 2))
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            for seed in ("1", "2"):
                args = ["--schema", "auto", "--seed", seed, "--out", str(folder / f"r{seed}"), *TRAIN]
                assert main(["train", "--data", str(folder / "d.npz"), *args]) == 0
        return [
            "mix",
            str(folder / "r1"),
            str(folder / "r2"),
            *(["--fit-weights"] if fit else []),
            "--out",
            str(folder / "mix"),
        ]

    return make


def _edit_pool_seed(config: dict) -> None:
    config["masks"]["pool_seeds"][0] += 1


ROUND3_VALUES_CLI_CASES = [
    Case("train on an int64 .npy column holding 2^53+1", _ids_npy),
    Case("train on a .csv id column 9007199254740990..9007199254740999", _ids_csv),
    Case("impute with an observed int64 cell 2^53+3", _impute_big_observed),
    Case("train on a real column of values around 1e200", _huge_column),
    Case("eval with config.json pool_seeds edited (the weights hold the pool)", _edit_config(_edit_pool_seed)),
    Case("mix --fit-weights with a validation row no member can score", _unscorable_validation(True)),
    Case("mix (equal weights) with a validation row no member can score", _unscorable_validation(False)),
]


def _broken_weights(weight: float) -> Callable:
    def call() -> object:
        mix = Mixture([MADE(4, [8]), MADE(4, [8], seed=1)])
        mix.load_state_dict({**mix.state_dict(), "weights": torch.tensor([weight, 0.5], dtype=torch.float64)})
        return mix.sample(3)

    return call


def _other_rules(saved: dict, loaded: dict) -> Callable:
    return lambda: MADE(6, [32], seed=4, **loaded).load_state_dict(MADE(6, [32], seed=4, **saved).state_dict())


def _vmap_validated() -> object:
    return torch.vmap(MADEDistribution(MODEL, validate_args=True).log_prob)(torch.zeros(3, 1, 4))


def _density(X: object, **options: object) -> MADEDensity:
    return MADEDensity(hidden_sizes=(8,), epochs=1, random_state=0, **options).fit(X)


def _uint8_draws() -> str:
    X = np.c_[np.linspace(200, 255, 200).astype(np.uint8), np.random.RandomState(0).randint(0, 2, 200)]
    drawn = _density(X.astype(np.uint8)).sample(2000)[:, 0]
    return f"dtype {drawn.dtype}, {int((drawn < 100).sum())} of 2000 draws wrapped below 100"


def _frame(cell: object) -> pd.DataFrame:
    return pd.DataFrame({"a": [1.0, cell, 2.0, 3.0], "b": [1.0, 2.0, 3.0, 4.5]})


def _one_category() -> str:
    frame = pd.DataFrame({"c": pd.Categorical(["x"] * 6), "v": [1.0, 2.0, 3.0, 1.5, 2.5, 0.5]})
    return f"samples {sorted(set(_density(frame).sample(50)['c']))}"


ROUND3_VALUES_LIBRARY_CASES = [
    (
        "`Mixture(members, weights=[1e308, 1e308])`",
        lambda: str(Mixture([MODEL, MODEL], [1e308, 1e308]).weights.tolist()),
    ),
    ("`Mixture(members, weights=[nan, 1])`", lambda: Mixture([MODEL, MODEL], [float("nan"), 1.0])),
    ("`sample` of a mixture whose loaded weights are [nan, 0.5]", _broken_weights(float("nan"))),
    ("`sample` of a mixture whose loaded weights are [inf, 0.5]", _broken_weights(float("inf"))),
    ("`em_weights` of a row every member scores -inf", lambda: em_weights(torch.tensor([[-1.0, -math.inf]] * 2))),
    ("`em_weights` of a NaN log-probability", lambda: em_weights(torch.tensor([[-1.0, math.nan], [-1.0, -2.0]]))),
    (
        "`log_prob(x, ensemble=np.int64(2))` (a pool of 3)",
        lambda: MADE(4, [8], num_masks=3).log_prob(torch.zeros(1, 4), ensemble=np.int64(2)),
    ),
    (
        "`log_prob(x, ensemble=torch.tensor(2))` (a pool of 3)",
        lambda: MADE(4, [8], num_masks=3).log_prob(torch.zeros(1, 4), ensemble=torch.tensor(2)),
    ),
    (
        "`log_prob(x, ensemble=2.0)` (a pool of 3)",
        lambda: MADE(4, [8], num_masks=3).log_prob(torch.zeros(1, 4), ensemble=2.0),
    ),
    (
        "`impute(x, observed, num_samples=2.5)`",
        lambda: MODEL.impute(torch.zeros(1, 4), torch.ones(1, 4, dtype=torch.bool), 2.5),
    ),
    (
        "`per_example_nll(x, batch_size=np.int64(2))`",
        lambda: MODEL.per_example_nll(torch.zeros(3, 4), batch_size=np.int64(2)),
    ),
    ("`torch.vmap(MADEDistribution(model, validate_args=True).log_prob)`", _vmap_validated),
    ("`MADEDistribution.support.event_dim` (read on the class)", lambda: str(MADEDistribution.support.event_dim)),
    (
        "`load_state_dict` of a random-ordering state into a natural-ordering MADE",
        _other_rules({"ordering": "random"}, {}),
    ),
    ("`load_state_dict` of a degrees='even' state into a degrees='random' MADE", _other_rules({"degrees": "even"}, {})),
    ("`MADEDensity` on a uint8 column piled at 255, sampled", _uint8_draws),
    (
        "`MADEDensity` on an int64 column holding 2^53+1",
        lambda: _density(np.array([[2**53 + 1, 0], [2**53 + 3, 1]] * 5)),
    ),
    ("`MADEDensity` on a dict in a numeric column", lambda: _density(_frame({"x": 1}))),
    ("`MADEDensity` on a list in a numeric column", lambda: _density(_frame([1, 2]))),
    ("`MADEDensity` on a stray string in a numeric column", lambda: _density(_frame("x"))),
    ("`MADEDensity` on a one-category column, sampled", _one_category),
    ("`MADEDensity` on a one-row frame", lambda: _density(pd.DataFrame({"a": [1.0], "b": [2.0]}))),
    ("`MADEDensity.sample(n_samples=2.0)`", lambda: _density(np.random.RandomState(0).randn(20, 2)).sample(2.0)),
    (
        "`MADEDensity` on a column of values around 1e200",
        lambda: _density(np.random.RandomState(0).randn(60, 2) * [1, 1e200]),
    ),
]


def _render_round3_values() -> list[str]:
    """The section of issue 25's values, columns and mixtures: its command-line table, then its library table."""
    lines = [
        "",
        f"## {ROUND3_VALUES}",
        "",
        "| bad input | exit | what `made` says | written |",
        "| --- | --- | --- | --- |",
    ]
    rows = [run_case(case) for case in ROUND3_VALUES_CLI_CASES]
    lines += [f"| {_cell(r.what)} | {r.status} | `{_cell(r.message)}` | {r.written} |" for r in rows]
    lines += ["", "| bad input | what it raises or returns |", "| --- | --- |"]
    results = (run_library_case(w, m) for w, m in ROUND3_VALUES_LIBRARY_CASES)
    lines += [f"| {_cell(what)} | `{_cell(result)}` |" for what, result in results]
    return lines


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file() or p.is_dir()
    }


def run_case(case: Case) -> Outcome:
    """Build the case in a fresh folder, run ``made`` on it, and record what happened."""
    if case.make is _unreadable and ROOT:
        return Outcome(case.what, "", "-", "not tried: running as root, which reads any file", "-")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        args = case.make(folder)
        before = _snapshot(folder)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                status = main(args)
            except SystemExit as exit_:  # argparse
                status = exit_.code
        after = _snapshot(folder)
        changed = sorted(name for name in after if before.get(name) != after[name])
        for path in folder.rglob("*"):
            path.chmod(0o700)  # so the folder can be removed
        shown = [a.replace(tmp, "DIR") for a in args]
        lines = [line.replace(tmp, "DIR") for line in err.getvalue().splitlines()]
        return Outcome(
            case.what,
            "made " + " ".join(shown),
            status,
            lines[-1] if lines else "",
            ", ".join(changed) if changed else "nothing",
        )


def run_library_case(what: str, call: Callable) -> tuple[str, str]:
    """What ``call`` raises (a refusal), or what it returns when it is accepted."""
    try:
        result = call()
    except (TypeError, ValueError) as err:
        return what, f"{type(err).__name__}: {err}"
    return what, f"returns {result}" if isinstance(result, (float, str)) else "accepted"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    """The document: the command-line table and the library table."""
    rows = [run_case(case) for case in CLI_CASES]
    lines = [
        "# Bad inputs and what `made` answers",
        "",
        "Every row was produced by running it: `python benchmarks/bad_inputs.py > docs/BAD_INPUTS.md`",
        f"(Python {platform.python_version()}, torch {torch.__version__}, {platform.system()}"
        f"{', as root' if ROOT else ''}).",
        "`tests/cli/test_bad_inputs.py` runs the same cases and checks them against this table.",
        "Exit status 2 is a refused input; `DIR` stands for the case's temporary folder;",
        "'written' lists files created or changed by the command (the bad input itself is made before).",
        "Argument-parsing errors (`--masks 0`) print argparse's usage line before the message.",
        "",
        "## Command line",
        "",
        "| bad input | exit | what `made` says | written |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {_cell(r.what)} | {r.status} | `{_cell(r.message)}` | {r.written} |" for r in rows]
    lines += [
        "",
        "## Library (model `MADE(4, [8])`, float32, unless the row says otherwise; x goes to `log_prob`)",
        "",
        "| bad input | what it raises or returns |",
        "| --- | --- |",
    ]
    lines += [
        f"| {_cell(what)} | `{_cell(result)}` |" for what, result in (run_library_case(w, m) for w, m in LIBRARY_CASES)
    ]
    lines += round3_lines()
    lines += _render_round3_values()
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ Round 3: folders, studies and signals (issue 25)
ROUND3 = "Round 3: folders, studies and signals"


def _quiet(argv: list[str]) -> None:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(argv) == 0, argv


def _two_runs(folder: Path) -> list[str]:
    """Two small finished runs of the same data (their folders)."""
    np.save(folder / "ok.npy", _binary(30, 4))
    runs = [str(folder / "a"), str(folder / "b")]
    for seed, run in enumerate(runs):
        _quiet(["train", "--data", str(folder / "ok.npy"), "--out", run, "--seed", str(seed), *TRAIN])
    return runs


def _users_folder(folder: Path) -> Path:
    """A folder holding no run: only the user's members/notes.txt and log.jsonl."""
    (folder / "out" / "members").mkdir(parents=True)
    (folder / "out" / "members" / "notes.txt").write_text("the user's")
    (folder / "out" / "log.jsonl").write_text("the user's")
    return folder / "out"


def _mix_into_users_folder(*extra: str) -> Callable:
    return lambda f: ["mix", *_two_runs(f), "--out", str(_users_folder(f)), *extra]


def _train_into_users_folder(folder: Path) -> list[str]:
    np.save(folder / "ok.npy", _binary(30, 4))
    return ["train", "--data", str(folder / "ok.npy"), "--out", str(_users_folder(folder)), "--overwrite", *TRAIN]


def _tune_into_a_mixture(folder: Path) -> list[str]:
    _quiet(["mix", *_two_runs(folder), "--out", str(folder / "mixture")])
    return ["tune", "--data", str(folder / "ok.npy"), "--out", str(folder / "mixture")]


def _tune_with_a_linked_study(folder: Path) -> list[str]:
    np.save(folder / "ok.npy", _binary(30, 4))
    (folder / "out").mkdir()
    (folder / "victim.db").write_text("the user's")
    (folder / "out" / "study.db").symlink_to(folder / "victim.db")
    return ["tune", "--data", str(folder / "ok.npy"), "--out", str(folder / "out")]


def _mix_other_components(folder: Path) -> list[str]:
    np.save(folder / "real.npy", np.random.RandomState(0).normal(size=(30, 2)))
    runs = [str(folder / "one"), str(folder / "three")]
    for run, components in zip(runs, ("1", "3")):
        _quiet(["train", "--data", str(folder / "real.npy"), "--schema", "auto", "--components", components,
                "--out", run, *TRAIN])  # fmt: skip
    return ["mix", *runs, "--out", str(folder / "mixed")]


def _tune(*options: str) -> Callable:
    def make(folder: Path) -> list[str]:
        np.save(folder / "ok.npy", _binary(30, 4))
        return ["tune", "--data", str(folder / "ok.npy"), "--out", str(folder / "run"), *options]

    return make


ROUND3_CASES = [
    Case("mix --out a folder holding the user's members/notes.txt and log.jsonl", _mix_into_users_folder()),
    Case("the same with --overwrite", _mix_into_users_folder("--overwrite")),
    Case("mix --out ''", lambda f: ["mix", *_two_runs(f), "--out", ""]),
    Case("train --out a folder holding the user's log.jsonl, with --overwrite", _train_into_users_folder),
    Case("train --resume ''", lambda f: ["train", "--resume", ""]),
    Case("tune --out a folder made by made mix", _tune_into_a_mixture),
    Case("tune --out a folder whose study.db links out of it", _tune_with_a_linked_study),
    Case("tune --storage that is not a URL", _tune("--storage", "not a url")),
    Case("tune --storage mysql:// without its driver", _tune("--storage", "mysql://me:secret@host/db")),
    Case("tune --minutes inf", _tune("--minutes", "inf")),
    Case("tune --minutes 1e308", _tune("--minutes", "1e308")),
    Case("tune --seed -1", _tune("--seed", "-1")),
    Case("tune --train-options '--bogus'", _tune("--train-options", "--bogus")),
    Case("tune --train-options='--bogus'", _tune("--train-options=--bogus")),
    Case("mix of two runs that differ only in --components", _mix_other_components),
]
# Checked by the tests instead, as they train a tune first or need a signal or a file size limit:
# a data file changed between two sessions (tests/tune/test_tune_folders.py), a tune folder copied
# elsewhere, --header, --out 'run?x=1', Ctrl-C, and a file size limit while weights are written
# (tests/io/test_full_disk.py).


def round3_lines() -> list[str]:
    """The round 3 table: command-line cases on folders, studies and signals."""
    lines = ["", f"## {ROUND3}", "", "| bad input | exit | what `made` says | written |", "| --- | --- | --- | --- |"]
    rows = [run_case(case) for case in ROUND3_CASES]
    return lines + [f"| {_cell(r.what)} | {r.status} | `{_cell(r.message)}` | {r.written} |" for r in rows]


if __name__ == "__main__":
    sys.stdout.write(render())
