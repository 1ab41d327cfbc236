"""The operator interface every solver is written against, and the model helpers operators share.

An operator holds ``batch`` independent symmetric operators of dimension ``size``; ``matvec`` maps a
``(batch, size)`` tensor row-wise. The weight Hessian has batch 1; the per-example input Hessian of B
images has batch B (one block of the block-diagonal Hessian per row), so every solver runs on all images
at once.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lbhessian.core.errors import LbhError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    """Map a config string ("float32" / "float64") or a torch dtype to a torch dtype."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype not in _DTYPES.values():
            raise LbhError(f"dtype: expected float32 or float64, got {dtype}")
        return dtype
    if dtype not in _DTYPES:
        raise LbhError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
    return _DTYPES[dtype]


def sum_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Summed softmax cross-entropy: chunks add up, the caller divides by the sample count."""
    return F.cross_entropy(logits, y, reduction="sum")


def model_dtype(model: nn.Module) -> torch.dtype:
    for t in model.parameters():
        if t.is_floating_point():
            return t.dtype
    return torch.float32


def as_dtype(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """The model itself when it already has ``dtype``; otherwise a private copy cast to it."""
    return model if model_dtype(model) == dtype else copy.deepcopy(model).to(dtype)


def model_device(model: nn.Module) -> torch.device:
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


def select_parameters(model: nn.Module, names: Sequence[str] | None = None) -> list[tuple[str, nn.Parameter]]:
    """Trainable parameters, all or those whose name equals or starts with one of ``names`` (a layer)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if names is None:
        chosen = named
    else:
        chosen = [(n, p) for n, p in named if any(n == k or n.startswith(k + ".") for k in names)]
        unknown = [k for k in names if not any(n == k or n.startswith(k + ".") for n, _ in named)]
        if unknown:
            raise LbhError(
                f"params: no trainable parameter named or under {unknown}; expected names from {[n for n, _ in named]}"
            )
    if not chosen:
        raise LbhError("params: the model has no trainable parameters to differentiate")
    return chosen


class Operator:
    """Interface: ``batch`` independent symmetric operators of dimension ``size``.

    ``matvec(v)`` takes and returns ``(batch, size)`` tensors; ``matvecs`` counts calls (each call is
    one product per row).
    """

    size: int
    batch: int
    dtype: torch.dtype
    device: torch.device
    matvecs: int = 0

    def matvec(self, v: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def _check(self, v: torch.Tensor) -> torch.Tensor:
        if v.shape != (self.batch, self.size):
            raise LbhError(f"matvec: expected a vector of shape ({self.batch}, {self.size}), got {tuple(v.shape)}")
        return v.to(dtype=self.dtype, device=self.device)


class DenseOperator(Operator):
    """Explicit matrices ``(batch, size, size)``: reference operator for tests and small problems."""

    def __init__(self, matrices: torch.Tensor):
        if matrices.dim() == 2:
            matrices = matrices.unsqueeze(0)
        self.A = matrices
        self.batch, self.size = matrices.shape[0], matrices.shape[1]
        self.dtype, self.device = matrices.dtype, matrices.device
        self.matvecs = 0

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        v = self._check(v)
        self.matvecs += 1
        return torch.bmm(self.A, v.unsqueeze(-1)).squeeze(-1)
