"""A file size limit (as ``ulimit -f``, or a full disk) reached while a checkpoint's weights are written:
one line, the previous checkpoint whole, and --resume finishes the run once there is room (issue 25)."""

import json
import subprocess
import sys

import numpy as np

# Runs 'made' in a fresh process that, after its 7th optimizer step (into the third epoch, the first two
# checkpointed), limits the size of any file it writes to 2000 bytes; SIGXFSZ is ignored so that write()
# fails with EFBIG, as under 'ulimit -f' in a shell that ignores it, rather than killing the process.
LIMITED = """
import resource, signal, sys
from torch.optim.optimizer import register_optimizer_step_post_hook
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
steps = 0
def limit(*_):
    global steps
    steps += 1
    if steps == 7:
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, resource.RLIM_INFINITY))
register_optimizer_step_post_hook(limit)
from made.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_file_size_limit_while_writing_weights_is_one_line_and_resume_works(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "bits.npz"
    np.savez(
        data,
        **{s: (rng.random((n, 6)) < 0.3).astype(np.uint8) for s, n in (("train", 300), ("valid", 30), ("test", 30))},
    )
    run = tmp_path / "run"
    argv = ["train", "--data", str(data), "--out", str(run), "--hidden", "300", "--epochs", "4"]
    argv += ["--checkpoint-every", "1", "--batch-size", "100", "--quiet"]
    limited = subprocess.run([sys.executable, "-c", LIMITED, *argv], capture_output=True, text=True, timeout=300)
    assert limited.returncode == 2, limited.stderr
    err = limited.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("made: error: ") and "File too large" in err[0], err
    assert "state-000003.safetensors" in err[0] and "--resume" in err[0]
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert state["progress"]["epoch"] == 2  # the checkpoint before, whole; nothing left half written
    assert sorted(p.name for p in (run / "checkpoint").iterdir()) == sorted([*state["files"].values(), "state.json"])
    resumed = subprocess.run([sys.executable, "-m", "made", "train", "--resume", str(run), "--quiet"],
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 4
