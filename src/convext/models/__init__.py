"""The model zoo: common CNN architectures whose module names and ``state_dict`` keys are
torchvision's (Pytorch-UNet's for ``unet``), so a torch checkpoint read with
``convext.read_state_dict`` loads with ``model.load_state_dict(sd)`` (strict) and gives the
same outputs, without torch::

    sd = convext.read_state_dict("resnet18.pth")   # torch.save(model.state_dict(), ...)
    model = convext.models.resnet18().eval()
    model.load_state_dict(sd)
    logits = convext.predict(model, images)         # (N, 3, 224, 224) float32

Each builder takes ``dtype`` (float32 or float64) and ``rng`` (a numpy Generator or seed for
torchvision's initialisation); every model saves and loads with ``model.save`` /
``convext.load``.
"""

from .lenet import lenet5
from .mobilenet import InvertedResidual, MobileNetV2, mobilenet_v2
from .resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50
from .unet import UNet, unet
from .vgg import VGG, vgg11

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "InvertedResidual",
    "MobileNetV2",
    "ResNet",
    "UNet",
    "VGG",
    "lenet5",
    "mobilenet_v2",
    "resnet18",
    "resnet34",
    "resnet50",
    "unet",
    "vgg11",
]
