"""The one eval/restore idiom: measurements and attacks run in eval mode and leave the model as it was."""

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


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
