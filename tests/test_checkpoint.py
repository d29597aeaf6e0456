import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import all_binary
from made import MADE
from made.checkpoint import CheckpointError, load_model, save_model


def test_round_trip_gives_identical_log_likelihoods(tmp_path):
    model = MADE(7, [12, 9], num_masks=3, direct=True, conditioning=True, ordering="random", seed=5)
    model.set_mask(2)
    save_model(tmp_path, model, {"note": "x"})
    loaded, config = load_model(tmp_path)
    x = all_binary(7, torch.float32)
    assert torch.equal(model.log_prob(x), loaded.log_prob(x))
    assert torch.equal(model.log_prob(x, ensemble=3), loaded.log_prob(x, ensemble=3))
    assert config["note"] == "x" and config["model"]["num_masks"] == 3
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_refuses_bad_checkpoints(tmp_path):
    save_model(tmp_path, MADE(5, [8]))
    weights = load_file(tmp_path / "model.safetensors")

    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(CheckpointError, match="format_version"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "model": {**config["model"], "evil": 1}}))
    with pytest.raises(CheckpointError, match="keys"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(config))

    save_file({k: v for k, v in weights.items() if k != "output.bias"}, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="missing"):
        load_model(tmp_path)
    save_file({**weights, "output.bias": torch.zeros(9)}, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="shape"):
        load_model(tmp_path)
    flipped = weights["hidden.0.mask"].clone()
    flipped[0, 0] = ~flipped[0, 0]
    save_file({**weights, "hidden.0.mask": flipped}, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="masks"):
        load_model(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x80\x04pickle")
    with pytest.raises(CheckpointError, match="safetensors"):
        load_model(tmp_path)
    with pytest.raises(CheckpointError, match="not a run folder"):
        load_model(tmp_path / "nope")
