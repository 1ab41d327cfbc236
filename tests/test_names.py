"""One home per name (issue 23): an experiment's name and a run's identity are built only in core/names.py, the
results layout only in workflow/rules/common.smk. Catches a second spelling that would drift from the first."""

import re

import pytest

from helpers.workflow import ROOT
from lbhessian.core.names import RUN_KEYS, RunId, by_experiment, experiment_name, split_experiment

NAMES = ROOT / "src" / "lbhessian" / "core" / "names.py"
COMMON = ROOT / "workflow" / "rules" / "common.smk"
# "{dataset}_{model}" as an f-string/format field pair, a concatenation with "_", or the name split back.
EXPERIMENT = [
    re.compile(r"\{[^{}\n]*\bdataset\b[^{}\n]*\}_\{[^{}\n]*\bmodel\b[^{}\n]*\}"),
    re.compile(r"\bdataset\b.*\+\s*[\"']_[\"']\s*\+.*\bmodel\b"),
    re.compile(r"\.r?split\(\s*[\"']_[\"']"),
]
# The five identity keys together on one line: a dict, a tuple or a format string of them.
IDENTITY = [re.compile(r"[\"'{]dataset\b.*\bmodel\b.*\bmode\b.*\bbatch[\"'}].*\bseed\b")]


def sources():
    files = [*(ROOT / "src").rglob("*.py"), ROOT / "Snakefile", *(ROOT / "workflow").rglob("*.smk")]
    assert len(files) > 40
    return files


@pytest.mark.parametrize(
    ("what", "patterns", "home"), [("experiment", EXPERIMENT, {NAMES}), ("run identity", IDENTITY, {NAMES, COMMON})]
)
def test_names_are_built_only_in_their_home(what, patterns, home):
    found = [
        f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
        for path in sources()
        if path not in home
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if any(p.search(line) for p in patterns)
    ]
    assert not found, f"the {what} built outside {', '.join(p.name for p in home)}:\n" + "\n".join(found)


def test_the_guard_sees_the_spellings_it_forbids():
    """The patterns match the spellings that were in the code before issue 23."""
    for line in (
        'f"{dataset}_{model}"',
        "f\"{e['dataset']}_{e['model']}\"",
        'df["dataset"] + "_" + df["model"]',
        'exp.rsplit("_", 1)',
    ):
        assert any(p.search(line) for p in EXPERIMENT), line
    assert IDENTITY[0].search('{"dataset": d, "model": m, "mode": mo, "batch": b, "seed": s}')
    assert IDENTITY[0].search('RUN_FLAGS = ("dataset", "model", "mode", "batch", "seed")')


def test_run_id_from_every_source_is_the_same():
    grid = {"dataset": "mnist5k", "model": "M1", "mode": "clean", "batch": "full", "seed": 3}
    run = {**grid, "batch_size": 512}
    del run["batch"]
    run["batch_size"] = "full"
    metrics = {
        "dataset": "mnist5k",
        "model": "M1",
        "mode": "clean",
        "batch_size": 512,
        "batch_label": "full",
        "seed": 3,
    }
    wildcards = {**grid, "seed": "3"}
    ids = {RunId.of(grid), RunId.of(run), RunId.of_metrics(metrics), RunId.of(wildcards)}
    assert ids == {RunId("mnist5k", "M1", "clean", "full", 3)}
    assert RUN_KEYS == ("dataset", "model", "mode", "batch", "seed")
    assert RunId.of(grid).describe() == "mnist5k/M1/clean/batch full/seed 3"
    assert RunId.of(grid).experiment == "mnist5k_M1"


def test_experiment_name_round_trips_with_underscores_in_the_dataset():
    assert split_experiment(experiment_name("fashion_mnist", "M2")) == ("fashion_mnist", "M2")


def test_by_experiment_groups_files_experiment_major():
    files = ["a/k1", "a/k2", "b/k1", "b/k2"]
    assert by_experiment(["a", "b"], ["k1", "k2"], files) == {
        "a": {"k1": "a/k1", "k2": "a/k2"},
        "b": {"k1": "b/k1", "k2": "b/k2"},
    }
    with pytest.raises(Exception, match="2 experiments x 2 kinds, but 3 files"):
        by_experiment(["a", "b"], ["k1", "k2"], files[:3])
