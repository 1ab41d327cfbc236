"""Layers that compute what ``torch.nn``'s do, bit for bit, in less CPU time (tests/test_layers.py checks the bits,
benchmarks/bench_models.py the time). Elsewhere (CUDA, other shapes) they are torch.nn's layers unchanged.

- ``MaxPool2d``: where no gradient flows through it, pools in the channels-last layout, which ATen vectorises
  across channels.
- ``ImageConv2d``: the first convolution, whose input (the image) needs no gradient. PyTorch's second derivative
  of a convolution computes the input's term whether or not the input needs it (ATen's
  ``_convolution_double_backward``): for M1's first layer a transposed convolution that was a quarter of every
  Hessian-vector product. This layer's weight gradient has a derivative of its own: the same ops in the same
  order, without that term.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd import Function
from torch.nn import functional as F


class MaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d``. Without a gradient through it, pooled in the channels-last layout (the same window scan:
    the first maximum wins) and returned in the input's. With one it stays in the input's layout: a gradient in
    another layout would let the layers below choose other kernels, and so other bits."""

    def forward(self, x):
        plain = x.device.type != "cpu" or x.dim() != 4 or x.is_contiguous(memory_format=torch.channels_last)
        if plain or (torch.is_grad_enabled() and x.requires_grad):
            return super().forward(x)
        return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous()


class _WeightGrad(Function):
    """(grad_weight, grad_bias) of a 2-D convolution from (grad_output, input): ATen's ``convolution_backward``,
    as autograd calls it for an input that needs no gradient. Its own derivative is ATen's double backward without
    the input's term: ggO = conv(input, ggW) + ggb, the ops and order of ``_convolution_double_backward``."""

    @staticmethod
    def forward(ctx, grad, x, weight, conf):
        ctx.set_materialize_grads(False)
        bias, stride, padding, dilation, groups = conf
        ctx.save_for_backward(x)
        ctx.conf, ctx.grad_shape = conf, grad.shape
        _, gw, gb = torch.ops.aten.convolution_backward(
            grad,
            x,
            weight,
            [weight.shape[0]] if bias else None,
            stride,
            padding,
            dilation,
            False,
            [0, 0],
            groups,
            [False, True, bias],
        )
        return (gw, gb) if bias else gw

    @staticmethod
    def backward(ctx, ggw, ggb=None):
        (x,) = ctx.saved_tensors
        _, stride, padding, dilation, groups = ctx.conf
        ggo = None if ggw is None else F.conv2d(x, ggw, None, stride, padding, dilation, groups)
        if ggb is not None:
            expanded = ggb.contiguous().view(1, -1, 1, 1).expand(ctx.grad_shape)
            ggo = expanded if ggo is None else ggo + expanded
        return ggo, None, None, None


class _ImageConv(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, conf):
        ctx.save_for_backward(x, weight)
        ctx.conf = conf
        _, stride, padding, dilation, groups = conf
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grads = _WeightGrad.apply(grad, x, weight, ctx.conf)
        gw, gb = grads if ctx.conf[0] else (grads, None)
        return None, gw, gb, None


class ImageConv2d(nn.Conv2d):
    """``nn.Conv2d`` as a network's first layer: where its input needs no gradient (training, weight Hessians) the
    second derivative skips the input's term; where it does (attacks, input Hessians), torch's own path."""

    def forward(self, x):
        plain = x.device.type != "cpu" or x.dim() != 4 or self.padding_mode != "zeros" or isinstance(self.padding, str)
        # Autocast and channels-last (training's speed options) stay on torch's path: its gain is in Hessians.
        plain = plain or not x.is_contiguous() or torch.is_autocast_enabled(x.device.type)
        if plain or x.requires_grad or not torch.is_grad_enabled():
            return super().forward(x)
        conf = (self.bias is not None, self.stride, self.padding, self.dilation, self.groups)
        return _ImageConv.apply(x, self.weight, self.bias, conf)
