"""Results files name paths relative to the repository, so their commands run again from any checkout."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from repo_paths import REPO, shown  # noqa: E402

ABSOLUTE = re.compile(r"(?<![\w.~$])/(?:work|root|home|tmp|Users|mnt|scratch)/")


def test_no_results_file_names_one_machines_absolute_paths():
    files = [*ROOT.glob("benchmarks/**/*.md"), *ROOT.glob("benchmarks/**/*.jsonl"), *ROOT.glob("docs/**/*.md")]
    files = [f for f in files if "runs" not in f.relative_to(ROOT).parts]
    assert len(files) > 10
    found = [
        f"{f.relative_to(ROOT)}:{number}: {line.strip()[:100]}"
        for f in files
        for number, line in enumerate(f.read_text().splitlines(), 1)
        if ABSOLUTE.search(line)
    ]
    assert found == []


def test_a_path_is_shown_relative_to_the_repository():
    assert shown(REPO / "benchmarks" / "SPEED.md") == "benchmarks/SPEED.md"
    assert shown(REPO.parent / "shared" / "data" / "dna.npz") == "../shared/data/dna.npz"
