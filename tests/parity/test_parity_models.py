"""The model zoo against the same architectures written in torch.nn with torchvision's module
names (Pytorch-UNet's for the U-Net): each torch model's state_dict is written with torch.save,
read with convext.read_state_dict in a fresh interpreter where importing torch fails, loaded
with strict=True, and the eval outputs compared (float32 and float64); for resnet18,
mobilenet_v2 and unet one training step (forward, cross-entropy, backward, SGD) gives torch's
gradients, parameters and running statistics in float64."""

import numpy as np
import pytest

import convext
from convext import models
from convext.losses import CrossEntropyLoss
from convext.optim import SGD

torch = pytest.importorskip("torch")
nn = torch.nn

from state_dict_files import read_without_torch  # noqa: E402


# --- torch side ------------------------------------------------------------------------------
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def conv_bn_act(inp, oup, k=3, stride=1, groups=1):
    """torchvision's Conv2dNormActivation with ReLU6 (a Sequential: the same keys)."""
    return nn.Sequential(
        nn.Conv2d(inp, oup, k, stride, (k - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(oup),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = [conv_bn_act(inp, hidden, 1)] if expand_ratio != 1 else []
        layers += [
            conv_bn_act(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes, width_mult=1.0, dropout=0.2):
        super().__init__()
        inp = models.mobilenet.make_divisible(32 * width_mult)
        last = models.mobilenet.make_divisible(1280 * max(1.0, width_mult))
        features = [conv_bn_act(3, inp, stride=2)]
        for t, c, n, s in [
            [1, 16, 1, 1],
            [6, 24, 2, 2],
            [6, 32, 3, 2],
            [6, 64, 4, 2],
            [6, 96, 3, 1],
            [6, 160, 3, 2],
            [6, 320, 1, 1],
        ]:
            out = models.mobilenet.make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(inp, out, s if i == 0 else 1, t))
                inp = out
        features.append(conv_bn_act(inp, last, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(last, num_classes))

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


def vgg11(num_classes):
    features, c = [], 3
    for v in [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]:
        if v == "M":
            features.append(nn.MaxPool2d(2, 2))
        else:
            features += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
            c = v
    model = nn.Module()
    model.features = nn.Sequential(*features)
    model.avgpool = nn.AdaptiveAvgPool2d((7, 7))
    model.classifier = nn.Sequential(
        nn.Linear(512 * 7 * 7, 4096),
        nn.ReLU(True),
        nn.Dropout(0.5),
        nn.Linear(4096, 4096),
        nn.ReLU(True),
        nn.Dropout(0.5),
        nn.Linear(4096, num_classes),
    )
    model.forward = lambda x: model.classifier(torch.flatten(model.avgpool(model.features(x)), 1))
    return model


def lenet5():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )


class DoubleConv(nn.Module):
    def __init__(self, in_channels, out_channels, mid_channels=None):
        super().__init__()
        mid = mid_channels or out_channels
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, in_channels, out_channels, bilinear):
        super().__init__()
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = DoubleConv(in_channels, out_channels, in_channels // 2)
        else:
            self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        dy, dx = x2.size(2) - x1.size(2), x2.size(3) - x1.size(3)
        x1 = nn.functional.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([x2, x1], dim=1))


class OutConv(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x):
        return self.conv(x)


class UNet(nn.Module):
    """Pytorch-UNet's U-Net (both decoders), generalised to any depth and base width."""

    def __init__(self, n_channels, n_classes, base, depth, bilinear):
        super().__init__()
        c = [base * 2**i for i in range(depth + 1)]
        factor = 2 if bilinear else 1
        self.depth = depth
        self.inc = DoubleConv(n_channels, c[0])
        for i in range(1, depth + 1):
            setattr(self, f"down{i}", Down(c[i - 1], c[i] // factor if i == depth else c[i]))
        for j in range(1, depth + 1):
            setattr(
                self,
                f"up{j}",
                Up(c[depth - j + 1], c[0] if j == depth else c[depth - j] // factor, bilinear),
            )
        self.outc = OutConv(c[0], n_classes)

    def forward(self, x):
        xs = [self.inc(x)]
        for i in range(1, self.depth + 1):
            xs.append(getattr(self, f"down{i}")(xs[-1]))
        y = xs.pop()
        for j in range(1, self.depth + 1):
            y = getattr(self, f"up{j}")(y, xs[self.depth - j])
        return self.outc(y)


# --- the models under test -------------------------------------------------------------------
# name -> (torch builder, convext builder(dtype), input shape, dtypes compared)
CASES = {
    "lenet5": (lenet5, lambda dt: models.lenet5(dtype=dt), (3, 1, 28, 28), ("f4", "f8")),
    "vgg11": (lambda: vgg11(10), lambda dt: models.vgg11(10, dtype=dt), (1, 3, 32, 32), ("f4",)),
    "resnet18": (
        lambda: ResNet(BasicBlock, [2, 2, 2, 2], 10),
        lambda dt: models.resnet18(10, dtype=dt),
        (2, 3, 64, 64),
        ("f4", "f8"),
    ),
    "resnet50": (
        lambda: ResNet(Bottleneck, [3, 4, 6, 3], 1000),
        lambda dt: models.resnet50(dtype=dt),
        (1, 3, 64, 64),
        ("f4", "f8"),
    ),
    "mobilenet_v2": (
        lambda: MobileNetV2(10, 0.75),
        lambda dt: models.mobilenet_v2(10, 0.75, dtype=dt),
        (2, 3, 64, 64),
        ("f4", "f8"),
    ),
    "unet": (
        lambda: UNet(3, 4, 8, 4, False),
        lambda dt: models.unet(3, 4, 8, 4, dtype=dt),
        (2, 3, 37, 45),
        ("f4", "f8"),
    ),
    "unet_bilinear": (
        lambda: UNet(3, 4, 8, 4, True),
        lambda dt: models.unet(3, 4, 8, 4, bilinear=True, dtype=dt),
        (2, 3, 37, 45),
        ("f4", "f8"),
    ),
}


def _randomise_batchnorm(model, gen):
    """Non-trivial statistics and affine parameters, so eval mode is really exercised."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
                m.weight.uniform_(0.6, 1.2, generator=gen)
                m.bias.uniform_(-0.2, 0.2, generator=gen)
                m.num_batches_tracked.fill_(7)


@pytest.fixture(scope="module")
def eval_runs(tmp_path_factory):
    """name -> {dtype: (state_dict read without torch, input, torch's float64 eval output)}."""
    tmp = tmp_path_factory.mktemp("zoo")
    gen = torch.Generator().manual_seed(0)
    paths, pending = [], []
    for name, (tbuild, _, shape, dtypes) in CASES.items():
        torch.manual_seed(hash(name) % 1000)
        tm = tbuild().eval()
        _randomise_batchnorm(tm, gen)
        x = torch.rand(shape, generator=gen, dtype=torch.float64)
        with torch.no_grad():
            ref = tm.double()(x).numpy()
        for dt in dtypes:
            tm.to(torch.float32 if dt == "f4" else torch.float64)
            path = tmp / f"{name}_{dt}.pth"
            torch.save(tm.state_dict(), path)
            paths.append(path)
            pending.append((name, dt, path, x.numpy(), ref))
        del tm
    report = read_without_torch(tmp, *paths)
    runs = {}
    for name, dt, path, x, ref in pending:
        entry = report[str(path)]
        assert "error" not in entry, entry.get("error")
        runs.setdefault(name, {})[dt] = (entry["arrays"], x, ref)
    return runs


@pytest.mark.parametrize("name", list(CASES))
def test_eval_outputs_match_torch(eval_runs, name):
    """Strict load of torch's state_dict, then the eval outputs: float64 within 1e-10 of
    torch's float64 (relative to the largest output), float32 within 1e-5 of it."""
    for dt, (sd, x, ref) in eval_runs[name].items():
        model = CASES[name][1](np.dtype(dt)).eval()
        assert list(model.state_dict()) == list(sd)  # torchvision's keys, in torch's order
        model.load_state_dict(sd, strict=True)
        y = model(x.astype(dt))
        assert y.dtype == np.dtype(dt) and y.shape == ref.shape
        scale = np.abs(ref).max()
        err = np.abs(y.astype(np.float64) - ref).max() / scale
        assert err <= (1e-10 if dt == "f8" else 1e-5), (name, dt, err)
        # eval mode: each sample's output is independent of the rest of the batch
        if x.shape[0] > 1:
            np.testing.assert_array_equal(model(x[1:].astype(dt)), y[1:])
        # optimize_for_inference (BatchNorm folded, epilogues fused): the same bound
        opt = convext.optimize_for_inference(model)
        yo = opt(x.astype(dt))
        assert yo.dtype == np.dtype(dt) and yo.shape == ref.shape
        err = np.abs(yo.astype(np.float64) - ref).max() / scale
        assert err <= (1e-10 if dt == "f8" else 1e-5), (name, dt, "optimized", err)
        if x.shape[0] > 1:
            np.testing.assert_array_equal(opt(x[1:].astype(dt)), yo[1:])


# --- one training step, float64 ----------------------------------------------------------------
TRAIN = {
    "resnet18": (
        lambda: ResNet(BasicBlock, [2, 2, 2, 2], 10),
        lambda: models.resnet18(10, dtype=np.float64),
        (4, 3, 32, 32),
        10,
    ),
    "mobilenet_v2": (
        lambda: MobileNetV2(10, 0.5, dropout=0.0),
        lambda: models.mobilenet_v2(10, 0.5, dropout=0.0, dtype=np.float64),
        (4, 3, 32, 32),
        10,
    ),
    "unet": (
        lambda: UNet(3, 3, 4, 3, False),
        lambda: models.unet(3, 3, 4, 3, dtype=np.float64),
        (2, 3, 19, 26),
        3,
    ),
    "unet_bilinear": (
        lambda: UNet(3, 3, 4, 3, True),
        lambda: models.unet(3, 3, 4, 3, bilinear=True, dtype=np.float64),
        (2, 3, 19, 26),
        3,
    ),
}


def _as_rows(t):
    """(N, C, H, W) -> (N*H*W, C): per-pixel classification as rows."""
    return t.transpose(0, 2, 3, 1).reshape(-1, t.shape[1])


@pytest.mark.parametrize("name", list(TRAIN))
def test_training_step_matches_torch(name):
    tbuild, cbuild, shape, classes = TRAIN[name]
    torch.manual_seed(1)
    tm = tbuild().double().train()
    gen = torch.Generator().manual_seed(2)
    _randomise_batchnorm(tm, gen)
    x = torch.rand(shape, generator=gen, dtype=torch.float64)
    model = cbuild().train()
    before = {k: v.numpy().copy() for k, v in tm.state_dict().items()}
    model.load_state_dict(before, strict=True)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    opt = SGD(model, lr=0.1, momentum=0.9, weight_decay=1e-4)

    out = tm(x)
    rows = out.permute(0, 2, 3, 1).reshape(-1, classes) if out.ndim == 4 else out
    target = torch.randint(0, classes, (rows.shape[0],), generator=gen)
    topt.zero_grad()
    nn.functional.cross_entropy(rows, target).backward()
    topt.step()

    y = model(x.numpy())
    loss, g = CrossEntropyLoss()(_as_rows(y) if y.ndim == 4 else y, target.numpy())
    if y.ndim == 4:
        g = g.reshape(y.shape[0], y.shape[2], y.shape[3], -1).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(y, out.detach().numpy(), rtol=1e-10, atol=1e-10 * np.abs(y).max())
    opt.zero_grad()
    model.backward(np.ascontiguousarray(g), needs_input_grad=False)
    grads = model.grads()
    # a gradient that is zero in exact arithmetic (the bias of a BatchNorm whose output is
    # normalised again by the next one) is rounding noise on both sides: the floor is 1e-12
    # of the model's largest gradient
    floor = 1e-12 * max(p.grad.abs().max().item() for p in tm.parameters())
    for k, p in tm.named_parameters():
        ref = p.grad.numpy()
        err = np.abs(grads[k] - ref).max()
        assert err <= max(1e-9 * np.abs(ref).max(), floor), (k, err, np.abs(ref).max())
    opt.step()
    after = model.state_dict()
    for k, v in tm.state_dict().items():
        ref = v.numpy()
        # the step's change carries the gradients' relative error
        scale = max(np.abs(ref).max(), np.abs(ref - before[k]).max())
        np.testing.assert_allclose(after[k], ref, rtol=0, atol=1e-9 * scale, err_msg=k)
