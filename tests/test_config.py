import copy

import pytest
import yaml

from lbhessian.core import config
from lbhessian.core.errors import LbhError


@pytest.fixture
def cfg():
    return config.load("params.yaml")


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda c: c["train"]["batch_sizes"].append(-4), "train.batch_sizes[2]: -4 is less than the minimum of 1"),
        (
            lambda c: c["train"]["experiments"][0].update(model="VGG"),
            "train.experiments[0].model: 'VGG' is not a known",
        ),
        (lambda c: c["train"]["experiments"][0].update(dataset="imagenet"), "train.experiments[0].dataset: 'imagenet'"),
        (lambda c: c["train"]["optimizer"].update(lr="fast"), "train.optimizer.lr: 'fast' is not of type 'number'"),
        (lambda c: c["spectrum"].update(topk=3), "spectrum: unknown key(s) ('topk' was unexpected)"),
        (lambda c: c["train"]["experiments"][0].update(model="ResNet21"), "ResNet depth must be 6n+2"),
        (lambda c: c["train"]["stop"].update(rule="forever"), "train.stop.rule: 'forever' is not one of epochs"),
        (lambda c: c["train"]["robust"][0].update(fraction=1.5), "train.robust[0].fraction: 1.5 is greater than"),
    ],
)
def test_bad_values_give_one_line_naming_the_key(cfg, edit, expected):
    bad = copy.deepcopy(cfg)
    edit(bad)
    with pytest.raises(LbhError) as err:
        config.validate(bad, "params.yaml")
    msg = str(err.value)
    assert expected in msg and "\n" not in msg and msg.startswith("params.yaml: ")


@pytest.mark.parametrize("path", ["params.yaml", "config/smoke.yaml", "config/paper.yaml"])
def test_shipped_configs_are_valid(path):
    assert config.runs(config.load(path))


def test_broken_yaml_and_missing_file(tmp_path):
    (tmp_path / "c.yaml").write_text("train: [unclosed\n")
    with pytest.raises(LbhError, match="c.yaml: not valid YAML"):
        config.load(tmp_path / "c.yaml")
    with pytest.raises(LbhError, match="nope.yaml: config file not found"):
        config.load(tmp_path / "nope.yaml")


def test_grid_and_run_config(cfg):
    runs = config.runs(cfg)
    # params.yaml: 2 batch sizes x 6 seeds clean, plus two robust modes at batch 16 x 6 seeds.
    assert len(runs) == 2 * 6 + 2 * 6
    assert {r["mode"] for r in runs} == {"clean", "fgsm05", "fgsm10"}
    assert {r["batch"] for r in runs if r["mode"] != "clean"} == {"16"}
    run = config.run_config(cfg, "mnist5k", "M1", mode="fgsm10", batch_size="16", seed="201")
    assert run["batch_size"] == 16 and run["seed"] == 201 and run["robust"]["eps"] == [0.1]
    assert run["optimizer"]["lr"] == cfg["train"]["optimizer"]["lr"]
    with pytest.raises(LbhError, match="neither 'clean' nor a train.robust name"):
        config.run_config(cfg, "mnist5k", "M1", mode="pgd9", batch_size="32", seed=0)


def test_experiment_entry_overrides_train_defaults(cfg):
    cfg = copy.deepcopy(cfg)
    cfg["train"]["experiments"].append(
        {"dataset": "digits", "model": "M2", "optimizer": {"lr": 0.5}, "batch_sizes": [8, "full"]}
    )
    config.validate(cfg)
    run = config.run_config(cfg, "digits", "M2", mode="clean", batch_size="full", seed=0)
    assert run["optimizer"] == {**cfg["train"]["optimizer"], "lr": 0.5}
    assert run["batch_size"] == "full"
    assert {r["batch"] for r in config.runs(cfg) if r["dataset"] == "digits"} == {"8", "full"}


def test_params_yaml_is_plain_yaml_for_dvc():
    # DVC reads params.yaml itself: keep it loadable by a plain YAML parser with the keys DVC tracks.
    data = yaml.safe_load(open("params.yaml"))
    assert isinstance(data["train"]["batch_sizes"], list)
