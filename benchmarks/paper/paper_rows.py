r"""The rows of the MADE paper's tables that `reproduce.py` measures, with the paper's figures.

Each row is a ``made train`` command (its arguments, without data or output
folder) and the figure the paper reports for it. A row may hold several
candidate configurations; the reported one is the candidate with the lowest
validation NLL, never chosen by test NLL. Paper figures come from
../shared/research/paper.md (Table 4, Table 6, Supplementary Tables 1 and 2,
Figure 2); the paper's ± are 95% confidence intervals.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Row", "ROWS", "MISSING", "NOTES", "UCI_BASE", "MNIST_BASE", "table3_grid", "same_arguments", "read_results"]

# The paper's UCI protocol (§6.1) and the authors' DNA command: 500 ReLU units, direct
# connection, adadelta (decay 0.95, eps 1e-5), minibatch 100, lookahead 30, orthogonal init.
UCI_BASE = (
    "--hidden 500 --direct --activation relu --optimizer adadelta --adadelta-rho 0.95 --adadelta-eps 1e-5 "
    "--batch-size 100 --patience 30 --init orthogonal --seed 1234"
).split()
# MNIST (§6.2 and the authors' command): adagrad (eps 1e-6), ReLU, direct connection, orthogonal init.
MNIST_BASE = (
    "--direct --activation relu --optimizer adagrad --batch-size 100 --patience 30 --init orthogonal --seed 1234"
).split()
SINGLE = "--masks 1 --ordering random".split()  # the authors start even a single mask from a random ordering
SAMPLING = "--masks unlimited --resample full".split()  # a fresh mask per minibatch: 300 valid / 1000 test masks
LONG = "not in gpu.sh: the paper trains it for hours (K20: 33-100 s an epoch), beyond an 8-minute GPU slot"


@dataclass(frozen=True)
class Row:
    """One figure of the paper and how we measure it."""

    name: str
    dataset: str
    table: str  # where the paper prints it
    model: str  # the paper's name of the model
    paper: float  # the paper's test NLL in nats
    paper_ci: float | None  # the paper's 95% confidence interval (±), when printed
    args: list[str]  # made train arguments shared by every candidate
    candidates: dict[str, list[str]] = field(default_factory=lambda: {"base": []})
    device: str = "cpu"
    note: str = ""

    def command(self, candidate: str) -> list[str]:
        """The ``made train`` arguments of one candidate (without data and output folder): the
        row's arguments with the candidate's options put in place of the row's same options."""
        options = dict(_options(["--dataset", self.dataset, *self.args]))
        options.update(_options(self.candidates[candidate]))
        return [token for flag, values in options.items() for token in (flag, *values)]


def _options(args: list[str]) -> list[tuple[str, list[str]]]:
    """``["--a", "1", "--b", "--c", "2", "3"]`` as ``[("--a", ["1"]), ("--b", []), ("--c", ["2", "3"])]``."""
    options: list[tuple[str, list[str]]] = []
    for token in args:
        if token.startswith("--"):
            options.append((token, []))
        else:
            options[-1][1].append(token)
    return options


def same_arguments(a: list[str], b: list[str]) -> bool:
    """Whether two ``made train`` argument lists ask for the same run (a later option overrides an earlier one)."""
    from made.cli import build_parser

    parser = build_parser()
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # arguments an older made no longer reads
            return vars(parser.parse_args(["train", *a])) == vars(parser.parse_args(["train", *b]))
    except SystemExit:
        return False


def _uci(name: str, dataset: str, model: str, paper: float, ci: float, masks: list[str], **kw) -> Row:
    table = "Table 4, Supp. Table 1"
    return Row(name, dataset, table, model, paper, ci, [*UCI_BASE, *masks], **kw)


def table3_grid(
    eps: tuple[str, ...] = ("1e-5",),
    activations: tuple[str, ...] = ("relu",),
    conditioning: tuple[bool, ...] = (False,),
    layers: tuple[int, ...] = (1,),
    masks: tuple[str | None, ...] = (None,),
) -> dict[str, list[str]]:
    """Candidates from the paper's UCI grid (Table 3), as overrides of the row's own arguments.

    ``None`` in ``masks`` keeps the row's number of masks. The candidate that
    overrides nothing, the plain protocol, is named ``base``.
    """
    grid = {}
    for m, e, act, cond, depth in itertools.product(masks, eps, activations, conditioning, layers):
        parts, extra = [], []
        if m is not None:
            parts.append(f"masks{m}")
            extra += ["--masks", m]
        if e != "1e-5":
            parts.append(f"eps{e}")
            extra += ["--adadelta-eps", e]
        if act != "relu":
            parts.append(act)
            extra += ["--activation", act]
        if cond:
            parts.append("cond")
            extra.append("--conditioning")
        if depth != 1:
            parts.append(f"{depth}hl")
            extra += ["--hidden", *["500"] * depth]
        grid["-".join(parts) or "base"] = extra
    return grid


# The grid searched for the rows whose plain protocol missed the paper (chosen on validation): Table 3's
# single-mask grid, one and two hidden layers (24 candidates; the rows measured before 2026-12-06 ran the
# one-layer half only, which their "N of 24 run" shows).
SINGLE_GRID = table3_grid(
    eps=("1e-5", "1e-7", "1e-9"), activations=("relu", "softplus"), conditioning=(False, True), layers=(1, 2)
)


def ordering_draws(grid: dict[str, list[str]], candidate: str, seeds: range) -> dict[str, list[str]]:
    """One grid candidate again with other seeds: a single mask's ordering and connectivity are one random
    draw (the seed's); the paper reports one figure per configuration, not its seed."""
    return {f"{candidate}-seed{seed}": [*grid[candidate], "--seed", str(seed)] for seed in seeds}


# connect4's single mask: the grid's best one-layer candidate with six more orderings (see NOTES).
CONNECT4_DRAWS = ordering_draws(SINGLE_GRID, "eps1e-7-softplus", range(1, 7))
MASKS_GRID = table3_grid(eps=("1e-5", "1e-7"), masks=(None, "8", "16", "32"))
# NIPS-0-12: small eps won for its single mask; conditioning weights, which the paper says mattered
# there, were tried with unlimited masks only (they trained far worse with eps 1e-5).
NIPS_MASKS_GRID = {**table3_grid(eps=("1e-5", "1e-9"), masks=(None, "8", "16", "32")), "cond": ["--conditioning"]}


def _lrs(*lrs: float) -> dict[str, list[str]]:
    """One candidate per learning rate of the paper's MNIST grid."""
    return {f"lr{lr:g}": ["--lr", f"{lr:g}"] for lr in lrs}


# The paper's MNIST grid (Table 5); gpu.sh runs the middle two, which fit its time budget.
MNIST_LRS = _lrs(0.05, 0.01, 0.1, 0.005)


ROWS: dict[str, Row] = {
    row.name: row
    for row in [
        _uci("dna-single", "dna", "MADE (1 mask)", 83.63, 0.52, SINGLE, candidates=SINGLE_GRID),
        _uci(
            "dna-mask-sampling",
            "dna",
            "MADE mask sampling",
            79.66,
            0.63,
            SAMPLING,
            note="the authors' README command: unlimited masks, full resampling, 300 validation masks",
        ),
        _uci("mushrooms-single", "mushrooms", "MADE (1 mask)", 9.68, 0.04, SINGLE, candidates=SINGLE_GRID),
        _uci(
            "mushrooms-mask-sampling",
            "mushrooms",
            "MADE mask sampling",
            9.69,
            0.03,
            SAMPLING,
            candidates=MASKS_GRID,
            note="the paper tuned the number of masks and does not say which",
        ),
        _uci("nips-single", "nips", "MADE (1 mask)", 280.25, 1.05, SINGLE, candidates=SINGLE_GRID),
        _uci(
            "nips-mask-sampling",
            "nips",
            "MADE mask sampling",
            277.28,
            None,
            SAMPLING,
            candidates=NIPS_MASKS_GRID,
            note="Table 4 prints 277.28, Supp. Table 1 275.92 ± 1.01; the number of masks is not given",
        ),
        _uci("adult-single", "adult", "MADE (1 mask)", 13.12, 0.05, SINGLE, candidates=SINGLE_GRID),
        _uci("adult-mask-sampling", "adult", "MADE mask sampling", 13.13, 0.05, SAMPLING, candidates=MASKS_GRID),
        _uci(
            "connect4-single",
            "connect4",
            "MADE (1 mask)",
            11.90,
            0.01,
            SINGLE,
            candidates={**SINGLE_GRID, **CONNECT4_DRAWS},
        ),
        _uci("connect4-mask-sampling", "connect4", "MADE mask sampling", 11.90, 0.01, SAMPLING, candidates=MASKS_GRID),
        _uci("ocr_letters-single", "ocr_letters", "MADE (1 mask)", 28.34, 0.22, SINGLE, candidates=SINGLE_GRID),
        _uci(
            "ocr_letters-mask-sampling",
            "ocr_letters",
            "MADE mask sampling",
            30.04,
            0.22,
            SAMPLING,
            candidates=MASKS_GRID,
        ),
        Row(
            "mnist-500-1mask",
            "binarized_mnist",
            "Figure 2 (digitized)",
            "MADE 1hl 500 units, 1 mask",
            94.71,
            None,
            [*MNIST_BASE, "--hidden", "500", *SINGLE],
            MNIST_LRS,
            "cuda",
            "Figure 2 is read off the plot (±0.02); lr chosen on validation from the paper's grid",
        ),
        Row(
            "mnist-500-8masks",
            "binarized_mnist",
            "Figure 2 (digitized)",
            "MADE 1hl 500 units, 8 masks",
            93.26,
            None,
            [*MNIST_BASE, "--hidden", "500", "--masks", "8", "--resample", "full"],
            MNIST_LRS,
            "cuda",
            "Figure 2 is read off the plot (±0.02); lr chosen on validation from the paper's grid",
        ),
        Row(
            "mnist-8000-1mask",
            "binarized_mnist",
            "Table 6, Supp. Table 2",
            "MADE 1hl 8000 units, 1 mask",
            88.40,
            0.45,
            [*MNIST_BASE, "--hidden", "8000", *SINGLE],
            MNIST_LRS,
            "cuda",
        ),
        Row(
            "mnist-8000x2-1mask",
            "binarized_mnist",
            "Table 6, Supp. Table 2",
            "MADE 2hl 8000 units, 1 mask",
            89.59,
            0.46,
            [*MNIST_BASE, "--hidden", "8000", "8000", *SINGLE],
            MNIST_LRS,
            "cuda",
        ),
        Row(
            "mnist-8000-32masks",
            "binarized_mnist",
            "Table 6, Supp. Table 2",
            "MADE 1hl 8000 units, 32 masks",
            88.04,
            0.44,
            [*MNIST_BASE, "--hidden", "8000", "--masks", "32", "--resample", "full"],
            _lrs(0.01),
            "cuda",
            LONG,
        ),
        Row(
            "mnist-8000x2-32masks",
            "binarized_mnist",
            "Table 6, Supp. Table 2",
            "MADE 2hl 8000 units, 32 masks",
            86.64,
            0.44,
            [*MNIST_BASE, "--hidden", "8000", "8000", "--masks", "32", "--resample", "full"],
            _lrs(0.01),
            "cuda",
            "the authors' README command for their best model; " + LONG,
        ),
    ]
}

# Facts about how the results were obtained that the tables cannot show.
NOTES = [
    "The UCI results were measured on 2026-11-27. Commits bab428d, ff23f29 and 95e13a6 in the table are states "
    "of the issue-3 branch before it was rebased (they became 0e7c058, 94d8a6b and fee8b26, with the same "
    "benchmark code); later runs used c5dff41, whose training loop has main's resumable loop and fast paths. "
    "Rerunning two rows with newer code gave the same runs: `nips-single --candidate eps1e-9-cond` with the "
    "first rebase gave the same test and validation NLL to the last bit (279.5020301818848, 279.3263380432129, "
    "152 epochs), with c5dff41 279.50203014 (a difference in the 8th digit, float summation order); and "
    "`dna-mask-sampling` re-measured with c5dff41 (the line reported above) ended after the same 380 epochs "
    "(best 350) with test NLL 79.43722031 against 79.43721836 the first time.",
    "UCI runs ran one at a time, at nice 10 with one thread, on a 2-core machine shared with other work: "
    "their times are wall-clock times under that load.",
    "A candidate stopped by the epoch cap (1000, `made train`'s default) had not met the paper's stopping rule; "
    "the authors trained without a cap.",
    "connect4, one mask: a single mask's ordering and connectivity are one random draw, the seed's (the authors' "
    "code starts even one mask from a random ordering); the paper reports one figure per configuration, not "
    "its seed. With the grid's 24 candidates at seed 1234 alone, validation chose eps1e-9-softplus-2hl, test "
    "11.98 ± 0.00, outside 11.90 ± 0.01. The grid's best one-layer candidate (eps1e-7-softplus) was then drawn "
    "with seeds 1-6 as well (`eps1e-7-softplus-seedN`; trained on 2026-12-06 at 0834aae by `made train` with "
    "the arguments in the Commands table, one thread, then read by `reproduce.py`; the chosen one, trained "
    "afresh by `reproduce.py`, gave the same figures to the last bit: test 11.890706365, 281 epochs): test "
    "11.96, 12.02, 11.89, 11.97, 12.03, 11.96 (with seed 1234: 11.99), a spread of 0.05 (standard deviation) "
    "from the ordering alone, nine times the test's standard error. As for every row, the candidate with the "
    "lowest validation NLL is reported; these six draws were added to this row only, the row that missed the "
    "paper's interval.",
    "Mask sampling on connect4: the unlimited-mask candidate (`base`, 300 validation masks every epoch, about 8 s "
    "an epoch here) was stopped after 89 epochs at validation NLL 15.57 to give the CPU to the pools of 8-32 "
    "masks; it is not in the table (`reproduce.py connect4-mask-sampling --candidate base` resumes it).",
]

# Rows of the paper's UCI table whose data is not in ../shared/data: (data set, fixed mask, mask sampling, CIs).
MISSING: dict[str, tuple[float, float, float, float]] = {
    "rcv1": (47.10, 46.74, 0.11, 0.11),
    "web": (28.53, 28.25, 0.20, 0.20),
}


def read_results(path: Path) -> list[dict]:
    """Every JSON line of a results file (none if it does not exist)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
