"""docs/api.md's example runs as written and its numbers are right (the public curvature API, issue 10)."""

import re

import torch

from helpers.nets import explicit_weight_hessian
from helpers.workflow import ROOT


def test_the_ten_line_example_runs_and_is_right(capsys):
    """Executes the first Python block of docs/api.md; a renamed export or changed signature breaks it, and its
    eigenvalues and trace are checked against the explicit Hessian's eigvalsh (wrong Lanczos would fail)."""
    block = re.search(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.DOTALL).group(1)
    code = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith(("import", "from"))]
    assert len(code) <= 10, f"the example promises ten lines, has {len(code)}"
    torch.manual_seed(0)
    ns = {}
    exec(compile(block, "docs/api.md", "exec"), ns)
    assert capsys.readouterr().out.strip()
    model, x, y = ns["model"], ns["x"], ns["y"]
    h = explicit_weight_hessian(model.double(), x.double(), y)
    eig = torch.linalg.eigvalsh(h)
    top = ns["top"].eigenvalues[0]
    assert torch.allclose(top, eig.flip(0)[:5].to(top.dtype), rtol=2e-3), (top, eig[-5:])
    assert abs(float(ns["trace"][0]) - float(eig.sum())) < 4 * float(ns["stderr"][0]) + 1e-3 * float(eig.abs().sum())
