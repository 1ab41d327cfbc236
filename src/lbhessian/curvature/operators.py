"""Hessian operators: a small LinearOperator-like interface shared by all solvers.

An operator holds ``batch`` independent symmetric operators of dimension ``size``; ``matvec`` maps a
``(batch, size)`` tensor row-wise. The weight Hessian has batch 1; the per-example input Hessian of B
images has batch B (one block of the block-diagonal Hessian per row), so every solver runs on all images
at once.

The model is always measured in eval mode (BatchNorm uses running statistics, dropout is off) and its
per-module train/eval flags and all buffers are restored exactly after every call (``frozen``).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lbhessian.errors import LbhError

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


@contextlib.contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode; afterwards restore every module's flag and every buffer bit-exactly."""
    flags = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag
        with torch.no_grad():
            for b, saved in buffers:
                # Copy only on a change: an in-place write would invalidate graphs that saved the buffer.
                if not torch.equal(b, saved):
                    b.copy_(saved)


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


# ---------------------------------------------------------------- memory sizing


def free_memory_bytes(device: torch.device) -> int:
    """Free memory on ``device``: the CUDA allocator's view, or MemAvailable of the host."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil ships with snakemake
        return 2 * 1024**3


def saved_bytes(fn: Callable[[], object]) -> int:
    """Bytes autograd saves for backward while ``fn`` runs (forward and create_graph backward)."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        keep = fn()
    del keep
    return total


# Share of free memory given to chunk graphs: the CPU hosts are shared by several jobs.
MEMORY_FRACTION = {"cpu": 0.2, "cuda": 0.6}
# Largest automatic chunk: on a CPU, chunks beyond a few hundred images only lose cache locality
# (LeNet HVP/gradient: 1.83x at 250, 2.18x at 1000); a GPU wants large chunks.
MAX_CHUNK = {"cpu": 256, "cuda": 8192}


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


class WeightHessian(Operator):
    """Hessian of the mean loss over ``(x, y)`` w.r.t. (a subset of) the model's weights.

    Products are Pearlmutter's: the gradient of g(theta)^T v, summed exactly over chunks of samples.
    ``chunk_size=None`` picks the largest chunk whose autograd graph fits a share of free memory;
    ``cache="auto"`` keeps every chunk's first-order graph (built once, reused by every product: LeNet
    on a CPU, about 1.8x a gradient instead of 2.8x) when all of them fit that share. ``dtype=float64`` measures a
    float64 copy of the model; float32 uses the model itself, restored exactly after each call.
    The operator assumes the weights do not change while it is in use.
    """

    def __init__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        params: Sequence[str] | None = None,
        chunk_size: int | None = None,
        dtype: str | torch.dtype | None = torch.float32,
        loss_fn: LossFn = sum_cross_entropy,
        cache: bool | str = "auto",
        memory_fraction: float | None = None,
    ):
        if len(x) == 0 or len(x) != len(y):
            raise LbhError(f"data: expected equal, non-zero numbers of images and labels, got {len(x)}, {len(y)}")
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
            raise LbhError(f"chunk_size: expected a positive integer or null, got {chunk_size!r}")
        if cache not in (True, False, "auto"):
            raise LbhError(f"cache: expected true, false or 'auto', got {cache!r}")
        self.dtype = resolve_dtype(dtype)
        self.device = model_device(model)
        # float64 on request: a private copy, so the caller's model is never cast.
        self.model = as_dtype(model, self.dtype)
        named = select_parameters(self.model, params)
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.shapes = [p.shape for p in self.params]
        self.numels = [p.numel() for p in self.params]
        self.size = sum(self.numels)
        self.batch = 1
        self.x = x.to(device=self.device, dtype=self.dtype)
        self.y = y.to(device=self.device)
        self.n = len(self.x)
        self.loss_fn = loss_fn
        self.matvecs = 0
        self._graphs: list[tuple[torch.Tensor, ...]] | None = None
        self._loss_grad: tuple[float, torch.Tensor] | None = None

        frac = memory_fraction if memory_fraction is not None else MEMORY_FRACTION.get(self.device.type, 0.2)
        budget = free_memory_bytes(self.device) * frac
        per_sample = self._bytes_per_sample()
        self.bytes_per_sample = per_sample
        if chunk_size is None:
            cap = MAX_CHUNK.get(self.device.type, 256)
            chunk_size = max(1, min(self.n, cap, int(budget // max(per_sample, 1))))
            # Even chunks (300 samples at most 256 a chunk: 150 + 150, not 256 + 44).
            chunk_size = -(-self.n // -(-self.n // chunk_size))
        self.chunk_size = min(chunk_size, self.n)
        self.cache = bool(cache) if cache != "auto" else per_sample * self.n <= budget

    # -- helpers
    def _chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(0, self.n, self.chunk_size):
            yield self.x[i : i + self.chunk_size], self.y[i : i + self.chunk_size]

    def _grad_graph(self, xc: torch.Tensor, yc: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        loss = self.loss_fn(self.model(xc), yc) / self.n
        grads = torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True)
        grads = tuple(torch.zeros_like(p) if g is None else g for g, p in zip(grads, self.params, strict=True))
        return loss, grads

    def _bytes_per_sample(self) -> int:
        # Two probe sizes: the slope removes what does not grow with the chunk (weights).
        small, large = min(4, self.n), min(20, self.n)
        with frozen(self.model):
            b_small = saved_bytes(lambda: self._grad_graph(self.x[:small], self.y[:small]))
            if large == small:
                return max(1, b_small // small)
            b_large = saved_bytes(lambda: self._grad_graph(self.x[:large], self.y[:large]))
        return max(1, (b_large - b_small) // (large - small), b_large // (4 * large))

    def flatten(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.cat([t.reshape(-1) for t in tensors])

    def unflatten(self, v: torch.Tensor) -> list[torch.Tensor]:
        return [t.view(s) for t, s in zip(torch.split(v, self.numels), self.shapes, strict=True)]

    def _hvp_from(self, grads: tuple[torch.Tensor, ...], vs: list[torch.Tensor], retain: bool) -> list[torch.Tensor]:
        # Parameters whose gradient is constant (no second-order path) contribute zero rows.
        pairs = [(i, g) for i, g in enumerate(grads) if g.requires_grad]
        out = [torch.zeros_like(p) for p in self.params]
        if not pairs:
            return out
        hv = torch.autograd.grad(
            [g for _, g in pairs],
            self.params,
            grad_outputs=[vs[i] for i, _ in pairs],
            retain_graph=retain,
            allow_unused=True,
        )
        return [o if h is None else h for o, h in zip(out, hv, strict=True)]

    def _build_cache(self) -> None:
        # One summed first-order graph over all chunks: each product is then a single backward call.
        total, loss = None, 0.0
        for xc, yc in self._chunks():
            lc, gc = self._grad_graph(xc, yc)
            loss += float(lc.detach())
            total = gc if total is None else tuple(a + b for a, b in zip(total, gc, strict=True))
        self._graphs = [total]
        self._loss_grad = (loss, self.flatten([g.detach() for g in total]))

    # -- public
    def loss_and_gradient(self) -> tuple[float, torch.Tensor]:
        """Mean loss and its full gradient (flat, ``(size,)``) over all samples, in eval mode."""
        if self._loss_grad is None:
            with frozen(self.model):
                if self.cache:
                    self._build_cache()
                else:
                    loss, grad = 0.0, torch.zeros(self.size, dtype=self.dtype, device=self.device)
                    for xc, yc in self._chunks():
                        lc = self.loss_fn(self.model(xc), yc) / self.n
                        gs = torch.autograd.grad(lc, self.params, allow_unused=True)
                        grad += self.flatten(
                            [torch.zeros_like(p) if g is None else g for g, p in zip(gs, self.params, strict=True)]
                        )
                        loss += float(lc.detach())
                    self._loss_grad = (loss, grad)
        return self._loss_grad

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        v = self._check(v)
        self.matvecs += 1
        out = torch.empty_like(v)
        with frozen(self.model):
            if self.cache and self._graphs is None:
                self._build_cache()
            for r in range(v.shape[0]):
                vs = self.unflatten(v[r])
                acc = None
                if self.cache:
                    for gc in self._graphs:
                        hv = self._hvp_from(gc, vs, retain=True)
                        acc = hv if acc is None else [a + h for a, h in zip(acc, hv, strict=True)]
                else:
                    for xc, yc in self._chunks():
                        _, gc = self._grad_graph(xc, yc)
                        hv = self._hvp_from(gc, vs, retain=False)
                        acc = hv if acc is None else [a + h for a, h in zip(acc, hv, strict=True)]
                out[r] = self.flatten(acc)
        return out

    def release(self) -> None:
        """Drop cached graphs (frees their memory)."""
        self._graphs = None


class InputHessian(Operator):
    """Per-example Hessians of the loss w.r.t. the input images, one block per image (batch = B).

    Row b of ``matvec(V)`` is H_x(x_b) V[b]: in eval mode images do not interact, so the Hessian of the
    summed loss over the batch is block diagonal and one double backward gives every block's product.
    The first-order graph is built once and reused by every product.
    """

    def __init__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        dtype: str | torch.dtype | None = torch.float32,
        loss_fn: LossFn = sum_cross_entropy,
    ):
        if len(x) == 0 or len(x) != len(y):
            raise LbhError(f"data: expected equal, non-zero numbers of images and labels, got {len(x)}, {len(y)}")
        self.dtype = resolve_dtype(dtype)
        self.device = model_device(model)
        self.model = as_dtype(model, self.dtype)
        self.image_shape = tuple(x.shape[1:])
        self.batch = len(x)
        self.size = math.prod(self.image_shape)
        self.x = x.to(device=self.device, dtype=self.dtype).detach().requires_grad_(True)
        self.y = y.to(device=self.device)
        self.loss_fn = loss_fn
        self.matvecs = 0
        with frozen(self.model):
            # Only the input is differentiated: weights stay out of the graph.
            req = [(p, p.requires_grad) for p in self.model.parameters()]
            for p, _ in req:
                p.requires_grad_(False)
            try:
                logits = self.model(self.x)
                self.losses = F.cross_entropy(logits, self.y, reduction="none").detach()
                total = self.loss_fn(logits, self.y)
                (self._g,) = torch.autograd.grad(total, self.x, create_graph=True)
            finally:
                for p, flag in req:
                    p.requires_grad_(flag)

    def gradients(self) -> torch.Tensor:
        """Per-image input gradients, ``(B, size)``."""
        return self._g.detach().reshape(self.batch, -1)

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        v = self._check(v)
        self.matvecs += 1
        if not self._g.requires_grad:  # piecewise-constant gradient: zero Hessian
            return torch.zeros_like(v)
        (hv,) = torch.autograd.grad(
            self._g, self.x, grad_outputs=v.view(self.batch, *self.image_shape), retain_graph=True
        )
        return hv.reshape(self.batch, -1)


def exact_input_hessian(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    dtype: str | torch.dtype | None = torch.float64,
    block: int = 256,
    batched: bool = True,
) -> torch.Tensor:
    """The explicit input Hessian ``(d, d)`` of the loss at one image ``x`` (C, H, W) with label ``y``.

    Rows are products of the input-Hessian operator with unit vectors, ``block`` at a time: one forward
    graph, its double backward vectorised over the block (``is_grads_batched``); where an op has no
    batching rule, the image is repeated ``block`` times instead. Symmetrised.
    """
    d = x.numel()
    dtype = resolve_dtype(dtype)
    device = model_device(model)
    model = as_dtype(model, dtype)  # one copy for all blocks
    eye = torch.eye(d, dtype=dtype, device=device)
    op = InputHessian(model, x.unsqueeze(0), y.reshape(1), dtype=dtype)
    rows = []
    for i in range(0, d, block):
        e = eye[i : i + block]
        try:
            if not batched:
                raise RuntimeError("repeat the image")
            (h,) = torch.autograd.grad(
                op._g, op.x, grad_outputs=e.view(len(e), 1, *x.shape), retain_graph=True, is_grads_batched=True
            )
            rows.append(h.reshape(len(e), d))
        except RuntimeError:
            rep = InputHessian(model, x.unsqueeze(0).expand(len(e), *x.shape), y.reshape(1).expand(len(e)), dtype=dtype)
            rows.append(rep.matvec(e))
    h = torch.cat(rows)
    return 0.5 * (h + h.T)
