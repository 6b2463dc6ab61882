"""Composite layers against torch.nn: the same nested modules (torchvision's attribute names)
give the same state_dict keys in the same order, load torch's weights strictly, and match
torch's eval outputs and autograd gradients (float64)."""

import numpy as np
import pytest

import convext as cx
from convext import layers as L

torch = pytest.importorskip("torch")
nn = torch.nn


# --- torch side: torchvision's BasicBlock / Bottleneck and a MobileNetV2-style block ---------
class TorchBasicBlock(nn.Module):
    def __init__(self, cin, c, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.downsample = None
        if stride != 1 or cin != c:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, c, 1, stride, bias=False), nn.BatchNorm2d(c)
            )

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class TorchBottleneck(nn.Module):
    def __init__(self, cin, width, stride=1):
        super().__init__()
        cout = width * 4
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.downsample = nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
        )

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.downsample(x))


class TorchInverted(nn.Module):
    """MobileNetV2's InvertedResidual layout: conv = [ConvBNReLU, ConvBNReLU, conv, bn]."""

    def __init__(self, c, hidden):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Sequential(nn.Conv2d(c, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU()),
            nn.Sequential(
                nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden, bias=False),
                nn.BatchNorm2d(hidden),
                nn.ReLU(),
            ),
            nn.Conv2d(hidden, c, 1, bias=False),
            nn.BatchNorm2d(c),
        )

    def forward(self, x):
        return x + self.conv(x)


class TorchNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            TorchInverted(8, 16),
        )
        self.layer1 = nn.Sequential(TorchBasicBlock(8, 8), TorchBasicBlock(8, 12, 2))
        self.layer2 = nn.Sequential(TorchBottleneck(12, 4))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = self.layer2(self.layer1(self.features(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# --- convext side: the same names, forward and an explicit backward -------------------------
D = np.float64


def conv_bn(cin, cout, k, stride=1, groups=1):
    return [
        L.Conv2D(cin, cout, k, stride, k // 2, groups=groups, bias=False, dtype=D),
        L.BatchNorm2D(cout, dtype=D),
    ]


class BasicBlock(cx.Layer):
    def __init__(self, cin, c, stride=1):
        super().__init__()
        self.conv1, self.bn1 = conv_bn(cin, c, 3, stride)
        self.relu1 = L.ReLU()
        self.conv2, self.bn2 = conv_bn(c, c, 3)
        self.relu2 = L.ReLU()
        self.downsample = None
        if stride != 1 or cin != c:
            self.downsample = L.Sequential(*conv_bn(cin, c, 1, stride))

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + (x if self.downsample is None else self.downsample(x)))

    def backward(self, grad_out, needs_input_grad=True):
        g = self.relu2.backward(grad_out)
        g_shortcut = g if self.downsample is None else self.downsample.backward(g)
        g_mid = self.relu1.backward(self.conv2.backward(self.bn2.backward(g)))
        return self.conv1.backward(self.bn1.backward(g_mid)) + g_shortcut


class Bottleneck(cx.Layer):
    def __init__(self, cin, width, stride=1):
        super().__init__()
        self.conv1, self.bn1 = conv_bn(cin, width, 1)
        self.conv2, self.bn2 = conv_bn(width, width, 3, stride)
        self.conv3, self.bn3 = conv_bn(width, width * 4, 1)
        self.relu1, self.relu2, self.relu3 = L.ReLU(), L.ReLU(), L.ReLU()
        self.downsample = L.Sequential(*conv_bn(cin, width * 4, 1, stride))

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        return self.relu3(self.bn3(self.conv3(out)) + self.downsample(x))

    def backward(self, grad_out, needs_input_grad=True):
        g = self.relu3.backward(grad_out)
        g_shortcut = self.downsample.backward(g)
        g = self.relu2.backward(self.conv3.backward(self.bn3.backward(g)))
        g = self.relu1.backward(self.conv2.backward(self.bn2.backward(g)))
        return self.conv1.backward(self.bn1.backward(g)) + g_shortcut


class Inverted(cx.Layer):
    """MobileNetV2's layout; x is used twice, so its gradients add."""

    def __init__(self, c, hidden):
        super().__init__()
        self.conv = L.Sequential(
            L.Sequential(*conv_bn(c, hidden, 1), L.ReLU()),
            L.Sequential(*conv_bn(hidden, hidden, 3, groups=hidden), L.ReLU()),
            *conv_bn(hidden, c, 1),
        )

    def forward(self, x):
        return x + self.conv(x)

    def backward(self, grad_out, needs_input_grad=True):
        return grad_out + self.conv.backward(grad_out)


class Net(cx.Layer):
    def __init__(self):
        super().__init__()
        self.features = L.Sequential(*conv_bn(3, 8, 3), L.ReLU(), Inverted(8, 16))
        self.layer1 = L.Sequential(BasicBlock(8, 8), BasicBlock(8, 12, 2))
        self.layer2 = L.Sequential(Bottleneck(12, 4))
        self.avgpool = L.GlobalAvgPool2D()
        self.flatten = L.Flatten()
        self.fc = L.Dense(16, 5, dtype=D)

    def forward(self, x):
        x = self.layer2(self.layer1(self.features(x)))
        return self.fc(self.flatten(self.avgpool(x)))

    def backward(self, grad_out, needs_input_grad=True):
        g = self.avgpool.backward(self.flatten.backward(self.fc.backward(grad_out)))
        return self.features.backward(self.layer1.backward(self.layer2.backward(g)))


def _pair(seed=0):
    torch.manual_seed(seed)
    ref = TorchNet().double()
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    with torch.no_grad():  # move the running statistics off their initial values
        for i in range(3):
            ref(x * (i + 1) + 0.5)
    model = Net()
    model.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()}, strict=True)
    return ref, model


def test_state_dict_keys_and_order_are_torchs():
    ref, model = _pair()
    assert list(model.state_dict()) == list(ref.state_dict())
    assert list(model.parameters()) == [k for k, _ in ref.named_parameters()]
    assert list(model.buffers()) == [k for k, _ in ref.named_buffers()]
    assert "features.3.conv.1.0.weight" in model.state_dict()
    assert "layer1.1.downsample.1.running_var" in model.state_dict()
    bn_keys = {k for k in L.BatchNorm2D(3).state_dict()}
    assert bn_keys == set(nn.BatchNorm2d(3).state_dict())
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k], v.numpy())


def test_eval_outputs_match_torch():
    ref, model = _pair(1)
    ref.eval(), model.eval()
    x = torch.randn(5, 3, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        want = ref(x).numpy()
    got = model(x.numpy())
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # one sample alone gives its row of the batch (eval statistics are the running ones)
    np.testing.assert_array_equal(model(x.numpy()[2:3]), got[2:3])


def test_training_step_gradients_match_autograd():
    ref, model = _pair(2)
    ref.train(), model.train()
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 5, dtype=torch.float64)
    (ref(x) * w).sum().backward()
    y = model(x.detach().numpy().copy())
    gx = model.backward(w.numpy())
    np.testing.assert_allclose(gx, x.grad.numpy(), rtol=1e-9, atol=1e-11)
    grads = model.grads()
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)
    # the running statistics moved exactly as torch's
    for k, v in ref.state_dict().items():
        np.testing.assert_allclose(
            model.state_dict()[k], v.numpy(), rtol=1e-12, atol=1e-14, err_msg=k
        )
    assert y.shape == (4, 5)


def test_repr_matches_torchs_layout():
    ref, model = _pair()
    ours = [line.split(":")[0] for line in repr(model).splitlines()]
    theirs = [line.split(":")[0] for line in repr(ref).splitlines()]
    # the same nesting and child names line by line, where the children are the same
    # (ours has one ReLU per use: relu1/relu2/relu3 where torchvision reuses relu)
    assert ours[0] == "Net(" and theirs[0] == "TorchNet("
    assert [s for s in ours if "(features)" in s or "(layer1)" in s or "(conv)" in s] == [
        s for s in theirs if "(features)" in s or "(layer1)" in s or "(conv)" in s
    ]
