"""Two processes under torchrun (gloo, CPU) train the same model as one process, within rounding."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from made.cli import main
from made.training.distributed import ProcessInfo, all_sum, shard

ARGS = ["--hidden", "16", "--masks", "3", "--epochs", "4", "--batch-size", "25", "--lr", "0.01", "--quiet"]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_shards_cover_a_minibatch_once():
    rows = torch.arange(7)
    parts = [shard(rows, ProcessInfo(rank, 3)) for rank in range(3)]
    assert torch.equal(torch.cat(parts), rows) and [len(p) for p in parts] == [3, 2, 2]
    assert torch.equal(shard(rows, ProcessInfo()), rows)
    assert all_sum([1.5, 2.0], ProcessInfo(), torch.device("cpu")) == [1.5, 2.0]


@pytest.mark.timeout(180)
def test_two_processes_match_one(tmp_path):
    rng = np.random.RandomState(0)
    x = (rng.rand(300, 10) < np.linspace(0.1, 0.9, 10)).astype(np.uint8)
    x[:, 5] = x[:, 4]
    data = tmp_path / "tiny.npy"
    np.save(data, x)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "MASTER_ADDR": "127.0.0.1"}
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "one"), *ARGS]) == 0
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
    ]
    double = subprocess.run(
        [*torchrun, "-m", "made", "train", "--data", str(data), "--out", str(tmp_path / "two"), *ARGS],
        env=env,
        capture_output=True,
        text=True,
    )
    assert double.returncode == 0, double.stderr[-3000:]
    assert "in 2 processes" in double.stdout and double.stdout.count("test NLL") == 1  # rank 0 alone reports
    one, two = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    for key in one:
        assert torch.allclose(one[key].double(), two[key].double(), rtol=0, atol=1e-6), key
    logs = [
        [json.loads(line) for line in (tmp_path / run / "log.jsonl").read_text().splitlines()] for run in ("one", "two")
    ]
    assert [r["epoch"] for r in logs[0]] == [r["epoch"] for r in logs[1]] == [1, 2, 3, 4]
    for a, b in zip(*logs):
        assert b["train_nll"] == pytest.approx(a["train_nll"], abs=1e-5)
        assert b["valid_nll"] == pytest.approx(a["valid_nll"], abs=1e-5)
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())


@pytest.mark.parametrize(
    "variable, value",
    [("WORLD_SIZE", "abc"), ("WORLD_SIZE", "0"), ("RANK", "-1"), ("LOCAL_RANK", "x"), ("MADE_DIST_TIMEOUT", "soon")],
)
def test_bad_torchrun_variables_are_one_line_naming_them(tmp_path, monkeypatch, capsys, variable, value):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv(variable, value)
    assert main(["train", "--out", str(tmp_path / "run"), "--hidden", "4", "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"made: error: {variable}={value!r}: expected")


@pytest.mark.timeout(60)
def test_a_missing_peer_is_announced_and_waited_for_only_so_long(tmp_path):
    env = {
        **os.environ,
        "WORLD_SIZE": "2",
        "RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
        "MADE_DIST_TIMEOUT": "2",
        "PYTHONWARNINGS": "ignore",
    }
    alone = subprocess.run(
        [
            sys.executable,
            "-m",
            "made",
            "train",
            "--out",
            str(tmp_path / "run"),
            "--hidden",
            "4",
            "--epochs",
            "1",
            "--quiet",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
    )
    lines = alone.stderr.strip().splitlines()
    assert alone.returncode == 2 and len(lines) == 2, alone.stderr
    assert (
        lines[0] == f"made: process 0 of 2 waiting up to 2 s for the others at 127.0.0.1:{env['MASTER_PORT']} "
        "(MADE_DIST_TIMEOUT)"
    )
    assert lines[1].startswith(
        f"made: error: could not join the 2 training processes at 127.0.0.1:"
        f"{env['MASTER_PORT']} within 2 s (MADE_DIST_TIMEOUT)"
    )
    assert not (tmp_path / "run").exists()
