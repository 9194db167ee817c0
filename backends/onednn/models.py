"""backends/onednn/models.py: the networks tbk_onednn is tested and measured on, built from
torch.nn alone (no torchvision): an MLP, a ResNet-style network of basic blocks, a
MobileNetV2-style network of inverted residuals, a small CNN with an operator tbk_onednn does
not run (softplus) in the middle, for partitioning, and small networks that use every operator
tbk_onednn runs.

    python3 models.py OUT_DIR [--size 64]

writes each network scripted, in eval mode, to OUT_DIR/<name>.pt, with OUT_DIR/<name>.input.pt
holding a batch-1 example input (a module whose attribute `x` is the tensor), so C++ tests can
load them.
"""
import argparse
import os

import torch
from torch import nn
import torch.nn.functional as F


class MLP(nn.Module):
    """784-512-512-10 with ReLU, as in the performance goals."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
            nn.Linear(512, 10))

    def forward(self, x):
        return self.layers(x)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.down is None else self.down(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """ResNet-18's layout (basic blocks 2-2-2-2, widths 64 to 512), 1000 classes."""

    def __init__(self, classes=1000):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], 64
        for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            blocks += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.pool(self.blocks(self.stem(x)))
        return self.fc(torch.flatten(x, 1))


def conv_bn(cin, cout, kernel, stride, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        self.residual = stride == 1 and cin == cout
        layers = [] if expand == 1 else [conv_bn(cin, hidden, 1, 1)]
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), conv_bn(hidden, cout, 1, 1, act=False)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (width 1.0): 17 inverted residual blocks, ReLU6, 1000 classes."""

    def __init__(self, classes=1000):
        super().__init__()
        layers, cin = [conv_bn(3, 32, 3, 2)], 32
        for expand, cout, repeat, stride in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                                             (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
            for k in range(repeat):
                layers.append(InvertedResidual(cin, cout, stride if k == 0 else 1, expand))
                cin = cout
        layers.append(conv_bn(cin, 1280, 1, 1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class WithSoftplus(nn.Module):
    """A small CNN with softplus (not a tbk_onednn operator) between its convolutions, and a
    hardswish, a sigmoid gate, a cat and a softmax around it."""

    def __init__(self):
        super().__init__()
        self.a = conv_bn(3, 16, 3, 2)
        self.b = nn.Conv2d(16, 16, 3, 1, 1)
        self.c = nn.Conv2d(32, 32, 1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        y = self.a(x)
        z = F.softplus(self.b(y))
        y = torch.cat([y, F.hardswish(z)], 1)
        y = self.c(y) * torch.sigmoid(y)
        y = F.avg_pool2d(y, 2)
        y = F.adaptive_avg_pool2d(y, 1).flatten(1)
        return torch.softmax(self.fc(y), 1)


class ConvOps(nn.Module):
    """Every convolution and pooling form tbk_onednn runs, eltwise operations, arithmetic with
    tensors, constants and numbers, cat; two outputs."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, 2, 1)
        self.bn = nn.BatchNorm2d(8)
        self.b = nn.Conv2d(8, 8, 3, 1, 2, dilation=2, groups=8)
        self.c = nn.Conv2d(8, 8, 1, groups=2, bias=False)
        self.scale = nn.Parameter(torch.rand(1, 8, 1, 1))

    def forward(self, x):
        y = F.relu6(self.bn(self.a(x)))
        z = F.hardswish(self.b(y)) + y
        z = self.c(z) * torch.sigmoid(F.adaptive_avg_pool2d(z, 1))
        z = torch.clamp(z * self.scale - 0.5, min=-1.0) / 2.0
        w = F.max_pool2d(z, 3, 2, 1, ceil_mode=True)
        v = F.avg_pool2d(z, 2, 2, 1) - F.hardsigmoid(w)
        return torch.tanh(torch.cat([v, F.gelu(v)], 1)), F.hardtanh(w)


class DenseOps(nn.Module):
    """linear with and without bias, addmm, flatten, reshape and view (with sizes), softmax."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(12, 16)
        self.b = nn.Linear(16, 6, bias=False)
        self.w = nn.Parameter(torch.randn(6, 5))
        self.bias = nn.Parameter(torch.randn(5))

    def forward(self, x):
        h = torch.relu(self.a(x.flatten(1)))
        h = torch.addmm(self.bias, self.b(h), self.w)
        return torch.softmax(h.reshape(-1, 5, 1).view(x.size(0), 5), 1)


class ConvConstant(nn.Module):
    """A convolution's output plus a constant of its full shape (a learned bias map), gated by the
    output itself: a binary operation with a constant operand that cannot join the convolution
    (its output is read twice), run on the convolution's layout or, where oneDNN has only its
    reference kernel for that, on another (the constant stays plain)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 1, 1)
        self.bias_map = nn.Parameter(torch.randn(1, 8, 16, 16))

    def forward(self, x):
        y = self.conv(x)
        return (y + self.bias_map) * torch.sigmoid(y)


class LayoutOps(nn.Module):
    """permute and transpose (ShuffleNet's channel shuffle, ConvNeXt's channels-last block),
    contiguous and clone, chunk, split and split_with_sizes unpacked, layer_norm over one and two
    dimensions with and without weights, gelu's tanh approximation, a constant first operand of
    mul."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3, 1, 1)
        self.norm = nn.LayerNorm(12)
        self.fc = nn.Linear(12, 12)
        self.norm_2d = nn.LayerNorm([5, 5], elementwise_affine=False)
        self.gamma = nn.Parameter(torch.rand(12, 1, 1))  # ConvNeXt's layer scale

    def forward(self, x):
        y = self.conv(x).clone()
        n, c, h, w = y.size()
        shuffled = torch.transpose(y.view(n, 3, c // 3, h, w), 1, 2).contiguous().view(n, -1, h, w)
        a, b = shuffled.chunk(2, dim=1)
        z = torch.cat((a, torch.relu(b)), 1).permute(0, 2, 3, 1)
        z = F.gelu(self.fc(self.norm(z)), approximate="tanh").permute(0, 3, 1, 2)
        p, q, r = z.split(5, dim=2)
        s, u = z.split([2, 10], dim=1)
        return self.norm_2d(p) + r, self.gamma * q - 0.5, s, torch.sigmoid(u)


class PoolOps(nn.Module):
    """Adaptive pools by PyTorch's window rule: regular windows (13 to 6, 13 to 3, 13 to 4) as one
    pooling window; irregular ones (13 to 5) averaged by a composed linear layer, and their max
    composed of slices, pools and cat; avg_pool2d with ceil mode, excluding padding and including
    it, where a last window overhangs and where none does."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 1, 1)
        self.pool = nn.AdaptiveMaxPool2d((3, 4))

    def forward(self, x):
        y = torch.relu(self.conv(x))
        regular = F.adaptive_avg_pool2d(y, (6, 6))
        composed = F.adaptive_avg_pool2d(y, (4, 5))
        ceil = F.avg_pool2d(y, 2, 2, 0, ceil_mode=True, count_include_pad=False)
        no_overhang = F.avg_pool2d(y, 3, 2, 1, ceil_mode=True)
        overhang = F.avg_pool2d(y, 2, 2, 0, ceil_mode=True)  # counting padding: PyTorch's last divisor
        return regular, composed, self.pool(y), ceil, no_overhang, F.adaptive_max_pool2d(y, (4, 5)), overhang


class ElementwiseOps(nn.Module):
    """The element-by-element functions beyond activations (abs, neg, exp, log, log2, log10, sqrt,
    rsqrt, pow by a number, round, elu, leaky_relu), unsqueeze and squeeze, and a 1-D convolution:
    on a sequence [N, C, L], the values kept where each function is defined."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 6, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)  # [N, 6, L]
        positive = y.abs() + 0.5
        grown = torch.exp(-positive) + torch.log(positive) + torch.log2(positive) - torch.log10(positive)
        roots = torch.sqrt(positive) * torch.rsqrt(positive + 1) + positive.pow(1.5) + (-y).pow(2)
        rounded = torch.round(y * 4)
        activations = F.elu(y, 0.7) + F.leaky_relu(y, 0.2)
        column = y.unsqueeze(2)  # [N, 6, 1, L]
        return grown, roots, rounded, activations, column.squeeze(2) * 2, torch.squeeze(column, 2) + 1


class AttentionOps(nn.Module):
    """Attention written out, as traced ViTs record it: a class token expanded to the batch and
    concatenated, projections, heads by view and transpose, bmm and matmul between computed
    tensors, a scale, softmax, layer_norm, the class token's row picked by select and the others
    by slice."""

    def __init__(self):
        super().__init__()
        self.token = nn.Parameter(torch.randn(1, 1, 8))
        self.qkv = nn.Linear(8, 24)
        self.norm = nn.LayerNorm(8)

    def forward(self, x):
        x = torch.cat([self.token.expand(x.size(0), -1, -1), x], dim=1)
        n, length, _ = x.size()
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=-1)
        q = q.reshape(n, length, 2, 4).transpose(1, 2).reshape(n * 2, length, 4)
        k = k.reshape(n, length, 2, 4).transpose(1, 2).reshape(n * 2, length, 4)
        v = v.reshape(n, length, 2, 4).transpose(1, 2)
        scores = torch.softmax(torch.bmm(q / 2.0, k.transpose(1, 2)), dim=-1).view(n, 2, length, length)
        y = x + torch.matmul(scores, v).transpose(1, 2).reshape(n, length, 8)
        return y[:, 0], y[:, 1:-1]


class ReshapedLinear(nn.Module):
    """A linear layer whose result is reshaped with -1 (issue 33: exported with a dynamic batch,
    it ran at the example's size only). Input [N, 32], output [N, 10, 16]."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(32, 160)

    def forward(self, x):
        return self.fc(x).reshape(-1, 10, 16)


class EmptySlice(nn.Module):
    """A linear layer and an empty slice of its result (issue 33: tbk_onednn refuses the slice at
    lowering, and the partitioners must leave it outside). Input [N, 8], outputs [N, 6], [N, 0]."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 6)

    def forward(self, x):
        h = self.fc(x)
        return h, h[:, 3:3]


def operator_networks():
    """name -> (module in eval mode, input): small networks that use every operator tbk_onednn runs."""
    torch.manual_seed(7)
    return {"conv_ops": (ConvOps().eval(), torch.randn(1, 3, 16, 16)),
            "conv_ops_odd": (ConvOps().eval(), torch.randn(2, 3, 9, 11)),
            "dense_ops": (DenseOps().eval(), torch.randn(3, 3, 4)),
            "conv_constant": (ConvConstant().eval(), torch.randn(1, 3, 16, 16)),
            "layout_ops": (LayoutOps().eval(), torch.randn(2, 3, 15, 5)),
            "pool_ops": (PoolOps().eval(), torch.randn(2, 3, 13, 13)),
            "attention_ops": (AttentionOps().eval(), torch.randn(2, 5, 8)),
            "elementwise_ops": (ElementwiseOps().eval(), torch.randn(2, 4, 9))}


def networks(size=64):
    """name -> (module in eval mode with randomized batch-norm statistics, batch-1 input)."""
    torch.manual_seed(20261128)
    made = {
        "mlp": (MLP(), torch.randn(1, 1, 28, 28)),
        "resnet": (ResNet(), torch.randn(1, 3, size, size)),
        "mobilenet_v2": (MobileNetV2(), torch.randn(1, 3, size, size)),
        "with_softplus": (WithSoftplus(), torch.randn(1, 3, size, size)),
    }
    for module, _ in made.values():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):  # statistics a trained network might have
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)
        module.eval()
    return made


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, (module, x) in networks(args.size).items():
        torch.jit.save(torch.jit.script(module), os.path.join(args.out, name + ".pt"))
        holder = torch.jit.script(_Holder(x))
        torch.jit.save(holder, os.path.join(args.out, name + ".input.pt"))


class _Holder(nn.Module):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self):
        return self.x


if __name__ == "__main__":
    main()
