"""Momentum SGD: torch.optim.SGD's update bit for bit, without its import of the compiler.

Every ``torch.optim`` optimizer imports ``torch._dynamo`` on its first use (the constructor and ``step`` are
wrapped for ``torch.compile``): 1.3 s of CPU in a process that never compiles, 24 times in a default run. This
class does the same arithmetic as ``torch.optim.SGD`` (dampening 0, no Nesterov: the single-tensor path, the
one taken on the CPU), in the same order, and reads and writes torch's ``state_dict`` layout, so resume states
move between the two (tests/test_train.py checks both).
"""

from __future__ import annotations

import torch


class SGD:
    """``torch.optim.SGD(params, lr, momentum, weight_decay)``: the optimizer of every training run."""

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        self.params = list(params)
        # One group, as torch's; the training loop sets ``param_groups[0]["lr"]`` before every step.
        self.param_groups = [{"lr": lr, "momentum": momentum, "weight_decay": weight_decay}]
        self.buffers: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        lr, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            grad = p.grad if decay == 0 else p.grad.add(p, alpha=decay)
            if momentum != 0:
                if self.buffers[i] is None:
                    self.buffers[i] = grad.detach().clone()
                else:
                    self.buffers[i].mul_(momentum).add_(grad, alpha=1)
                grad = self.buffers[i]
            p.add_(grad, alpha=-lr)

    def state_dict(self) -> dict:
        """torch.optim.SGD's layout: per-parameter momentum buffers by index, and the one group's settings."""
        group = {**self.param_groups[0], "dampening": 0, "nesterov": False, "maximize": False}
        state = {i: {"momentum_buffer": b.clone()} for i, b in enumerate(self.buffers) if b is not None}
        return {"state": state, "param_groups": [{**group, "params": list(range(len(self.params)))}]}

    def load_state_dict(self, state: dict) -> None:
        group = state["param_groups"][0]
        self.param_groups[0].update({k: group[k] for k in ("lr", "momentum", "weight_decay")})
        self.buffers = [None] * len(self.params)
        for i, s in state["state"].items():
            buffer = s.get("momentum_buffer")
            self.buffers[int(i)] = None if buffer is None else buffer.to(self.params[int(i)].device).clone()
