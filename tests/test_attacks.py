"""FGSM / PGD / perturb on a tiny conv net trained on scikit-learn's 8x8 digits (a second of CPU)."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.configs import smoke_config
from helpers.nets import fit_sgd
from lbhessian import attacks
from lbhessian.core.errors import LbhError

INSTALL_HINT = (
    "torchattacks is not installed: run `.venv/bin/pip install --no-deps -r envs/requirements-nodeps.txt` "
    "(it pins torchattacks==3.5.1; --no-deps keeps the project's torch)"
)


def digits(n=600):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images[:n], dtype=torch.float32).div(16.0).unsqueeze(1)  # [0, 1], 1x8x8
    return x, torch.tensor(d.target[:n], dtype=torch.int64)


def tiny_net(seed=0):
    torch.manual_seed(seed)
    # BatchNorm so that eval vs train mode matters.
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 10)
    )


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    x, y = digits()
    model = fit_sgd(tiny_net(), x, y)
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.9  # really trained
    return model, x, y


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def test_eps_zero_returns_the_clean_images(trained):
    model, x, y = trained
    for norm in ("linf", "l2"):
        assert torch.equal(attacks.fgsm(model, x, y, 0.0, norm), x)
    assert torch.equal(attacks.pgd(model, x, y, 0.0, steps=3, step_size=0.01, random_start=True), x)
    assert accuracy(model, attacks.fgsm(model, x, y, 0.0), y) == accuracy(model, x, y)


@pytest.mark.parametrize("eps", [0.05, 0.3])
def test_linf_perturbation_within_eps_and_box(trained, eps):
    model, x, y = trained
    for adv in (attacks.fgsm(model, x, y, eps), attacks.pgd(model, x, y, eps, steps=5, step_size=eps / 2)):
        delta = adv - x
        assert delta.abs().max() <= eps + 1e-6
        assert adv.min() >= 0 and adv.max() <= 1
    # Where the box does not clip, FGSM moves each pixel by exactly eps along the gradient's sign.
    grad, _ = attacks.input_grad(model.eval(), x, y)
    inside = (x >= eps) & (x <= 1 - eps) & (grad != 0)
    adv = attacks.fgsm(model, x, y, eps)
    assert inside.sum() > 100
    torch.testing.assert_close((adv - x)[inside], eps * grad.sign()[inside], rtol=0, atol=1e-6)


@pytest.mark.parametrize("eps", [0.5, 2.0])
def test_l2_perturbation_within_eps_and_box(trained, eps):
    model, x, y = trained
    adv = attacks.fgsm(model, x, y, eps, norm="l2")
    norms = (adv - x).flatten(1).norm(dim=1)
    assert norms.max() <= eps * (1 + 1e-5)
    assert adv.min() >= 0 and adv.max() <= 1
    # Clipping only shortens the step; most images still move a good part of eps.
    assert norms.median() > 0.3 * eps
    # Direction check against an independent per-image gradient (image 0 alone, sum == mean for B=1).
    x0 = x[:1].clone().requires_grad_(True)
    (g0,) = torch.autograd.grad(F.cross_entropy(model(x0), y[:1]), x0)
    unclipped = (x[:1] + eps * g0 / g0.norm()).clamp(0, 1)
    torch.testing.assert_close(adv[:1], unclipped, rtol=0, atol=1e-5)


def test_fgsm_raises_the_loss_of_every_example(trained):
    model, x, y = trained
    adv = attacks.fgsm(model, x, y, 0.01)
    with torch.no_grad():
        # float64 loss so that confident examples' tiny losses still resolve the change.
        before = F.cross_entropy(model(x).double(), y, reduction="none")
        after = F.cross_entropy(model(adv).double(), y, reduction="none")
    assert (after > before).all(), f"{(after <= before).sum()} examples did not get a higher loss"


def test_pgd_one_step_without_random_start_equals_fgsm(trained):
    model, x, y = trained
    for eps in (0.03, 0.1, 0.25):
        assert torch.equal(
            attacks.pgd(model, x, y, eps, steps=1, step_size=eps, random_start=False), attacks.fgsm(model, x, y, eps)
        )


def test_pgd_is_at_least_as_strong_as_fgsm(trained):
    model, x, y = trained
    eps = 0.1
    clean = accuracy(model, x, y)
    fgsm_acc = accuracy(model, attacks.fgsm(model, x, y, eps), y)
    pgd_acc = accuracy(
        model, attacks.pgd(model, x, y, eps, steps=10, step_size=0.025, generator=torch.Generator().manual_seed(0)), y
    )
    assert fgsm_acc < clean - 0.1
    assert pgd_acc <= fgsm_acc


def test_pgd_random_start_is_seeded(trained):
    model, x, y = trained
    a = attacks.pgd(model, x, y, 0.1, steps=2, step_size=0.05, generator=torch.Generator().manual_seed(3))
    b = attacks.pgd(model, x, y, 0.1, steps=2, step_size=0.05, generator=torch.Generator().manual_seed(3))
    c = attacks.pgd(model, x, y, 0.1, steps=2, step_size=0.05, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def _torchattacks():
    try:
        import torchattacks
    except ImportError:
        pytest.fail(INSTALL_HINT)
    return torchattacks


@pytest.mark.parametrize("eps", [0.05, 0.2])
def test_fgsm_matches_torchattacks(trained, eps):
    ta = _torchattacks()
    model, x, y = trained
    theirs = ta.FGSM(model, eps=eps)(x, y)
    assert torch.equal(attacks.fgsm(model, x, y, eps), theirs)


@pytest.mark.parametrize("random_start", [False, True])
def test_pgd_matches_torchattacks(trained, random_start):
    ta = _torchattacks()
    model, x, y = trained
    eps, steps, alpha = 0.1, 7, 0.02
    torch.manual_seed(11)  # both draw the random start from the global RNG
    theirs = ta.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=random_start)(x, y)
    torch.manual_seed(11)
    ours = attacks.pgd(model, x, y, eps, steps=steps, step_size=alpha, random_start=random_start)
    assert torch.equal(ours, theirs)


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_attacks_leave_model_state_and_grads_alone():
    x, y = digits(64)
    model = tiny_net()
    model.train()
    model[4].eval()  # a per-module flag that a blanket model.train() would overwrite
    flags = [m.training for m in model.modules()]
    for p in model.parameters():
        p.grad = torch.full_like(p, 7.0)
    state = _snapshot(model)
    attacks.fgsm(model, x, y, 0.1)
    attacks.fgsm(model, x, y, 1.0, norm="l2")
    attacks.pgd(model, x, y, 0.1, steps=3, step_size=0.05)
    assert [m.training for m in model.modules()] == flags
    for k, v in model.state_dict().items():  # BatchNorm running stats and batch counter included
        assert torch.equal(v, state[k]), k
    assert all(torch.equal(p.grad, torch.full_like(p, 7.0)) for p in model.parameters())


def test_perturb_replaces_the_seeded_fraction(trained):
    model, x, y = trained
    x, y = x[:64], y[:64]
    model.train()
    state = _snapshot(model)
    robust = {"name": "fgsm", "attack": "fgsm", "norm": "linf", "eps": [0.05, 0.1, 0.2], "fraction": 0.25}
    mixed = attacks.perturb(model, x, y, robust, torch.Generator().manual_seed(5))
    # Independent replay of the documented draw order: permutation, then eps index.
    g = torch.Generator().manual_seed(5)
    idx = torch.randperm(64, generator=g)[:16]
    eps = robust["eps"][int(torch.randint(3, (1,), generator=g))]
    assert model.training and all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    model.eval()
    assert torch.equal(mixed[idx], attacks.fgsm(model, x[idx], y[idx], eps))
    rest = torch.ones(64, dtype=torch.bool)
    rest[idx] = False
    assert torch.equal(mixed[rest], x[rest])
    assert not mixed.requires_grad
    again = attacks.perturb(model, x, y, robust, torch.Generator().manual_seed(5))
    assert torch.equal(mixed, again)


def test_perturb_pgd_and_edge_fractions(trained):
    model, x, y = trained
    x, y = x[:40], y[:40]
    model.train()
    for p in model.parameters():
        p.grad = None
    robust = robust_entry(name="pgd", attack="pgd", norm="linf", eps=[0.1], fraction=1.0, steps=3)
    mixed = attacks.perturb(model, x, y, robust, torch.Generator().manual_seed(0))
    assert (mixed - x).abs().max() <= 0.1 + 1e-6 and mixed.min() >= 0 and mixed.max() <= 1
    assert ((mixed - x).flatten(1).abs().amax(1) > 0).all()  # every row attacked
    assert all(p.grad is None for p in model.parameters())
    assert model.training
    none = dict(robust, fraction=0.0)
    assert torch.equal(attacks.perturb(model, x, y, none, torch.Generator().manual_seed(0)), x)
    model.eval()


def robust_entry(**entry):
    """One train.robust entry as the training loop receives it: validated, with the schema's defaults."""
    return smoke_config(train={"robust": [entry]})["train"]["robust"][0]


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"attack": "cw", "eps": [0.1]}, "train.robust[0].attack"),
        ({"attack": "pgd", "norm": "l2", "eps": [1]}, "train.robust[0].norm"),
        ({"attack": "fgsm", "eps": []}, "train.robust[0].eps"),
        ({"attack": "fgsm", "eps": [0.1], "fraction": 2}, "train.robust[0].fraction"),
    ],
)
def test_bad_robust_mode_is_one_line_from_the_schema(entry, words):
    """Robust-training settings are checked with the config, before any training job (not mid-training)."""
    with pytest.raises(LbhError) as err:
        robust_entry(name="r", **{"fraction": 0.5, **entry})
    assert words in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda m, x, y: attacks.fgsm(m, x, y, -0.1), "eps"),
        (lambda m, x, y: attacks.fgsm(m, x, y, 0.1, norm="l1"), "norm"),
        (lambda m, x, y: attacks.fgsm(m, x * 2, y, 0.1), "[0, 1]"),
        (lambda m, x, y: attacks.fgsm(m, x, y[:3], 0.1), "labels"),
        (lambda m, x, y: attacks.pgd(m, x, y, 0.1, steps=0, step_size=0.01), "steps"),
    ],
)
def test_bad_input_raises_lbherror(call, words):
    x, y = digits(8)
    with pytest.raises(LbhError) as err:
        call(tiny_net(), x, y)
    assert words in str(err.value) and "\n" not in str(err.value)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_attacks_on_cuda_with_a_cpu_generator(trained):
    """The training loop's generator lives on the CPU while the batch is on the GPU."""
    model, x, y = trained
    gpu = torch.device("cuda")
    model_gpu = copy.deepcopy(model).to(gpu)
    xg, yg = x.to(gpu), y.to(gpu)
    adv = attacks.fgsm(model_gpu, xg, yg, 0.1)
    assert adv.device.type == "cuda" and (adv - xg).abs().max() <= 0.1 + 1e-6
    # Same signs as on the CPU except where the gradient is within rounding of zero.
    assert (adv.cpu() == attacks.fgsm(model, x, y, 0.1)).float().mean() > 0.99
    a = attacks.pgd(model_gpu, xg, yg, 0.1, steps=3, step_size=0.05, generator=torch.Generator().manual_seed(1))
    b = attacks.pgd(model_gpu, xg, yg, 0.1, steps=3, step_size=0.05, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and (a - xg).abs().max() <= 0.1 + 1e-6 and a.min() >= 0 and a.max() <= 1
    model_gpu.train()
    robust = robust_entry(name="pgd", attack="pgd", eps=[0.05, 0.1], fraction=0.5, steps=2)
    mixed = attacks.perturb(model_gpu, xg[:64], yg[:64], robust, torch.Generator().manual_seed(2))
    assert mixed.device.type == "cuda" and model_gpu.training
    changed = ((mixed - xg[:64]).flatten(1).abs().amax(1) > 0).sum().item()
    assert changed == 32
