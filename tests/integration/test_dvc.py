"""DVC around the real Snakemake workflow: a temporary git repo holding the project's files, params.yaml = smoke.

One `dvc repro` (config/smoke.yaml, about 2 minutes) is shared by the module; the param-change test changes
only the `attack:` section, so it reruns the cheap attack and report jobs. The SLURM test makes its own one-run
repo (it runs in make test's cluster lane). No mocks: real git, DVC and Snakemake.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers.workflow import ROOT, SMOKE

pytestmark = pytest.mark.slow

VENV_BIN = Path(sys.executable).parent
DVC = str(VENV_BIN / "dvc")
TRACKED = ("results/runs", "data/prepared", ".snakemake/metadata")
AFTER_REPRO = {}  # repo -> what its first `dvc repro` left for git to see


def env(**extra):
    e = dict(os.environ)
    e.pop("SNAKEMAKE_PROFILE", None)
    e.update(
        DVC_NO_ANALYTICS="1",
        PATH=os.pathsep.join([str(VENV_BIN), e.get("PATH", "")]),
        GIT_AUTHOR_NAME="test",
        GIT_AUTHOR_EMAIL="test@example.org",
        GIT_COMMITTER_NAME="test",
        GIT_COMMITTER_EMAIL="test@example.org",
    )
    e.update(extra)
    return e


def sh(cwd, *cmd, check=True, timeout=600, **extra_env):
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env(**extra_env), capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def dvc(cwd, *args, **kw):
    return sh(cwd, DVC, *args, **kw)


def output(proc):
    return proc.stdout + proc.stderr


def file_hashes(repo, *dirs):
    """{relative path: sha256} of every file under dirs."""
    out = {}
    for d in dirs:
        for p in sorted((repo / d).rglob("*")):
            if p.is_file():
                out[str(p.relative_to(repo))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def mtimes(repo, pattern):
    return {str(p.relative_to(repo)): p.stat().st_mtime_ns for p in sorted(repo.glob(pattern))}


def project_files():
    """The project's files as the working tree has them: tracked plus untracked-but-not-ignored."""
    proc = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return [f for f in proc.stdout.split("\0") if f and (ROOT / f).is_file()]


def job_counts(text):
    """Snakemake's 'Job stats' table: {rule: count} (the last table printed)."""
    counts = {}
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "Job stats:"]
    assert starts, f"no 'Job stats' table in:\n{text[-3000:]}"
    for line in lines[starts[-1] + 3 :]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


def make_repo(repo: Path, params: str) -> Path:
    """A git repo of the project's files with the given params.yaml, after one `dvc repro` (committed)."""
    for f in project_files():
        (repo / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, repo / f)
    (repo / "params.yaml").write_text(params)
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "project at smoke size")
    assert (repo / ".dvc" / "config").exists(), "the project must ship .dvc/config (a clone is DVC-ready)"
    dvc(repo, "repro", timeout=1800)
    AFTER_REPRO[repo] = sh(repo, "git", "status", "--porcelain", "--untracked-files=all").stdout.splitlines()
    sh(repo, "git", "add", "dvc.lock")
    sh(repo, "git", "commit", "-qm", "smoke results")
    return repo


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """The project with params.yaml = config/smoke.yaml, after one `dvc repro`."""
    return make_repo(tmp_path_factory.mktemp("dvc") / "repo", SMOKE.read_text())


def checkpoints(repo):
    return sorted(repo.glob("results/runs/**/checkpoint.pt"))


def test_repo_config_analytics_off_and_ignores(repo):
    assert dvc(repo, "config", "core.analytics").stdout.strip() == "false"
    # Python caches would change the code dependency's hash; Snakemake's other state is not DVC's business.
    ignored = dvc(repo, "check-ignore", "src/lbhessian/__pycache__/cli.cpython-311.pyc", ".snakemake/log/x.log").stdout
    assert "__pycache__" in ignored and ".snakemake/log" in ignored
    assert dvc(repo, "check-ignore", ".snakemake/metadata", check=False).returncode == 1  # not ignored
    stage = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]["pipeline"]
    assert stage["cmd"].split()[0] == "snakemake" and "--profile" not in stage["cmd"]


def test_repro_runs_the_pipeline_and_a_second_repro_does_nothing(repo):
    assert len(checkpoints(repo)) == 4
    # Only dvc.lock was new for git: DVC's outputs and Snakemake's state are all git-ignored.
    assert AFTER_REPRO[repo] == ["?? dvc.lock"]
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["pipeline"]
    outs = {o["path"]: o for o in lock["outs"]}
    for path in ("results/runs", "results/metrics.json", "results/plots", ".snakemake/metadata", "data/prepared"):
        assert path in outs and outs[path]["md5"], path
    assert lock["params"]["params.yaml"]["attack"]["fgsm_linf"] == [0.05, 0.1]
    assert json.loads(dvc(repo, "status", "--json").stdout) == {}
    before = mtimes(repo, "results/**/*")
    proc = dvc(repo, "repro")
    assert "didn't change, skipping" in output(proc)
    assert mtimes(repo, "results/**/*") == before


def test_metrics_show(repo):
    shown = json.loads(dvc(repo, "metrics", "show", "--json").stdout)
    (rev,) = shown.values()
    metrics = rev["data"]["results/metrics.json"]["data"]
    assert metrics["runs"] == 4 and metrics["diverged"] == 0
    clean = metrics["mnist5k/M1/clean"]
    assert set(clean) == {"bs16", "bs128", "bs512"}
    assert all(clean[b]["lambda_1"] > 0 for b in clean)


def test_plots_show_and_offline_figures(repo, tmp_path):
    shown = json.loads(dvc(repo, "plots", "show", "--json").stdout)
    assert not shown.get("errors"), shown["errors"]
    plots = shown["data"]
    for name in ("lambda_1 vs batch size", "accuracy vs batch size", "training loss curves"):
        (plot,) = plots[name]
        assert plot["type"] == "vega"
        values = plot["content"]["data"]["values"]  # the data points reached the spec
        assert values and {"batch_size", "mode"} <= set(values[0]), name
    lam = {(v["mode"], v["batch_size"]) for v in plots["lambda_1 vs batch size"][0]["content"]["data"]["values"]}
    assert lam == {("clean", "16"), ("clean", "128"), ("clean", "512"), ("fgsm", "16")}
    assert plots["results/figures/mnist5k_M1/lambda1_vs_batch.png"][0]["type"] == "image"
    # The project's own figures render without any JavaScript, so without a CDN.
    out = tmp_path / "plots"
    dvc(repo, "plots", "show", "results/figures/mnist5k_M1/lambda1_vs_batch.png", "-o", out)
    html = (out / "index.html").read_text()
    assert "<script" not in html and "lambda1_vs_batch.png" in html
    (png,) = out.rglob("*lambda1_vs_batch.png")
    assert png.read_bytes() == (repo / "results/figures/mnist5k_M1/lambda1_vs_batch.png").read_bytes()


def test_param_change_reruns_only_what_depends_on_it(repo):
    kept = {**mtimes(repo, "results/runs/**/checkpoint.pt"), **mtimes(repo, "results/runs/**/spectrum.json")}
    kept.update(mtimes(repo, "results/runs/**/inputs.json"))
    attacks = mtimes(repo, "results/runs/**/attack.json")
    # SNAKEMAKE_PROFILE chooses how Snakemake runs: the stage's cmd names no profile.
    proc = dvc(
        repo,
        "exp",
        "run",
        "-n",
        "eps02",
        "-S",
        "attack.fgsm_linf=[0.1,0.2]",
        "-S",
        "attack.samples=64",
        SNAKEMAKE_PROFILE="profiles/local",
    )
    log = output(proc)
    assert "Using profile profiles/local" in log
    counts = job_counts(log)
    assert counts.get("attack") == 4 and not {"data", "train", "spectrum", "inputs"} & set(counts), counts
    assert {
        **mtimes(repo, "results/runs/**/checkpoint.pt"),
        **mtimes(repo, "results/runs/**/spectrum.json"),
        **mtimes(repo, "results/runs/**/inputs.json"),
    } == kept
    after = mtimes(repo, "results/runs/**/attack.json")
    assert set(after) == set(attacks) and all(after[k] != attacks[k] for k in attacks)
    attack = json.loads(next(repo.glob("results/runs/**/attack.json")).read_text())
    assert set(attack["test"]["fgsm_linf"]) == {"0.1", "0.2"}

    diff = json.loads(dvc(repo, "params", "diff", "--json").stdout)["params.yaml"]
    assert diff["attack.samples"] == {"old": 128, "new": 64, "diff": -64}
    assert set(diff) == {"attack.samples", "attack.fgsm_linf"} and "0.2" in str(diff["attack.fgsm_linf"]["new"])
    # Fewer attacked images: the headline adversarial accuracies moved, clean accuracy and lambda_1 did not.
    metrics = json.loads(dvc(repo, "metrics", "diff", "--json").stdout)["results/metrics.json"]
    assert metrics and all(k.endswith(".fgsm_acc") for k in metrics), metrics

    rows = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    exps = {}
    for row in rows:
        for e in [row, *[x for r in row.get("experiments") or [] for x in r["revs"]]]:
            data = e.get("data") or {}
            if "params" in data:
                exps[e.get("name") or e["rev"]] = data["params"]["params.yaml"]["data"]["attack"]["fgsm_linf"]
    assert exps.get("eps02") == [0.1, 0.2], exps
    assert exps.get("main") == [0.05, 0.1], exps


def test_push_delete_pull_restores_every_checkpoint_bit_for_bit(repo, tmp_path):
    sh(repo, "git", "add", "dvc.lock", "params.yaml")  # the workspace's state (the experiment, if it ran first)
    sh(repo, "git", "commit", "-qm", "results to share", check=False)
    remote = tmp_path / "remote"
    dvc(repo, "remote", "add", "-f", "-d", "--local", "store", remote)
    expected = file_hashes(repo, *TRACKED, "results")
    assert len([p for p in expected if p.endswith("checkpoint.pt")]) == 4
    dvc(repo, "push")
    assert any((remote / "files" / "md5").rglob("*"))

    for d in (".dvc/cache", "results", "data/prepared", ".snakemake/metadata"):
        shutil.rmtree(repo / d)
    assert not checkpoints(repo)
    dvc(repo, "pull")
    assert file_hashes(repo, *TRACKED, "results") == expected
    assert json.loads(dvc(repo, "status", "--json").stdout) == {}

    # A fresh clone pulls the same bits and its Snakemake state agrees: nothing to rerun.
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", repo, clone)
    dvc(clone, "remote", "add", "-d", "--local", "store", remote)
    dvc(clone, "pull")
    assert file_hashes(clone, *TRACKED, "results") == expected
    # Its files have fresh mtimes in checkout order: the stage's own command must still see nothing to do.
    cmd = yaml.safe_load((clone / "dvc.yaml").read_text())["stages"]["pipeline"]["cmd"].split()
    proc = sh(clone, *cmd, "-n")
    assert "Nothing to be done" in output(proc), output(proc)[-3000:]


def test_corrupt_cache_file_is_detected_not_used(repo, tmp_path):
    good_remote, fresh_remote = tmp_path / "remote", tmp_path / "fresh"
    dvc(repo, "remote", "add", "-f", "-d", "--local", "store", good_remote)
    dvc(repo, "remote", "add", "-f", "--local", "fresh", fresh_remote)
    dvc(repo, "push")
    ckpt = checkpoints(repo)[0]
    good = hashlib.md5(ckpt.read_bytes()).hexdigest()
    cached = repo / ".dvc" / "cache" / "files" / "md5" / good[:2] / good[2:]
    assert cached.is_file()
    # Bit rot: one flipped byte, same size (DVC keeps cache files read-only, so chmod first).
    data = bytearray(cached.read_bytes())
    data[len(data) // 2] ^= 0xFF
    cached.chmod(0o644)
    cached.write_bytes(bytes(data))

    # Pushing it: DVC re-hashes the cache file, refuses to upload it and says so.
    proc = dvc(repo, "push", "-r", "fresh")
    assert "Missing cache files" in output(proc) and good in output(proc), output(proc)
    assert not (fresh_remote / "files" / "md5" / good[:2] / good[2:]).exists()
    assert not cached.exists()  # the corrupt copy was dropped from the cache
    # Status reports the damaged output.
    status = json.loads(dvc(repo, "status", "--json").stdout)
    changed = {
        k: v
        for entries in status.values()
        for e in entries
        if isinstance(e, dict)
        for k, v in e.get("changed outs", {}).items()
    }
    assert changed.get("results/runs") == "not in cache", status
    # A pull brings the good bytes back from the remote.
    ckpt.unlink()
    dvc(repo, "pull")
    assert hashlib.md5(ckpt.read_bytes()).hexdigest() == good
    assert hashlib.md5(cached.read_bytes()).hexdigest() == good
    assert json.loads(dvc(repo, "status", "--json").stdout) == {}


def test_exp_run_new_batch_size_trains_only_that_run(repo):
    """`dvc exp run -S 'train.batch_sizes=[...]'` with one batch size added: Snakemake trains and measures only
    the new run (plus the cheap report steps); every existing run's files stay untouched.

    Catches a run's params that carry the whole batch-size list (every run would retrain), and a DVC stage
    whose outputs are not persisted (DVC would delete them and everything would rerun)."""
    per_run = ("checkpoint.pt", "spectrum.json", "inputs.json", "attack.json")
    kept = {k: v for name in per_run for k, v in mtimes(repo, f"results/runs/**/{name}").items()}
    assert len(kept) == 16
    proc = dvc(repo, "exp", "run", "-n", "bs64", "-S", "train.batch_sizes=[16,64,128,full]")
    counts = job_counts(output(proc))
    assert {k: counts.get(k) for k in ("train", "spectrum", "inputs", "attack")} == dict.fromkeys(
        ("train", "spectrum", "inputs", "attack"), 1
    ), counts
    assert "data" not in counts
    after = {k: v for name in per_run for k, v in mtimes(repo, f"results/runs/**/{name}").items()}
    assert {k: after[k] for k in kept} == kept
    new = repo / "results/runs/mnist5k/M1/clean/bs64/seed0"
    assert set(after) - set(kept) == {str((new / n).relative_to(repo)) for n in per_run}
    assert json.loads((new / "metrics.json").read_text())["batch_size"] == 64
    assert json.loads((repo / "results/metrics.json").read_text())["runs"] == 5


@pytest.mark.cluster  # make test's cluster lane (tests/lanes.sh): the one SLURM cluster of the host
def test_snakemake_profile_slurm_dvc_repro_submits_through_sbatch(slurm_cluster, tmp_path):
    """`SNAKEMAKE_PROFILE=profiles/slurm dvc repro` (README), for real: a changed report setting makes DVC rerun
    its stage, whose Snakemake takes the SLURM profile from the environment and submits the report jobs
    through sbatch; each SLURM job completes and no per-run step reruns.

    Catches a stage cmd that hard-codes a profile (SNAKEMAKE_PROFILE ignored: jobs would run locally) and a
    profile that DVC's environment cannot use."""
    from slurm_cluster import SUBMITTED

    # Its own one-run project (the smoke config at full batch only), reproduced locally first: the module's
    # repo stays in the other lane, and the test needs only some finished runs for DVC to skip.
    params = yaml.safe_load(SMOKE.read_text())
    params["train"].update(batch_sizes=["full"], robust=[])
    repo = make_repo(tmp_path / "repo", yaml.safe_dump(params, sort_keys=False))
    assert len(checkpoints(repo)) == 1
    params["report"]["title"] = "Smoke test via SLURM"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    kept = mtimes(repo, "results/runs/**/*.json")
    proc = dvc(repo, "repro", SNAKEMAKE_PROFILE="profiles/slurm", SLURM_CONF=str(slurm_cluster.conf), timeout=900)
    log = output(proc)
    assert "Using profile profiles/slurm" in log, log[-3000:]
    submitted = SUBMITTED.findall(log)
    rules = sorted(re.search(r"/rule_([^/]+)/", logfile).group(1) for _, _, logfile in submitted)
    # Every job of the rerun (the report steps: the config file is their input) went through sbatch.
    assert rules == sorted(r for r in job_counts(log) if r not in ("all", "total")), log[-4000:]
    assert {"collect", "figures", "tables", "claims"} <= set(rules), log[-4000:]
    assert not {"data", "train", "spectrum", "inputs", "attack"} & set(rules)
    for _, slurm_id, _ in submitted:
        job = slurm_cluster.job(slurm_id)
        assert job["JobState"] == "COMPLETED" and job["WorkDir"] == str(repo), job
    assert mtimes(repo, "results/runs/**/*.json") == kept
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["pipeline"]
    assert lock["params"]["params.yaml"]["report"]["title"] == "Smoke test via SLURM"
    assert json.loads(dvc(repo, "status", "--json").stdout) == {}
