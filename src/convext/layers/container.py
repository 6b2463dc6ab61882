"""Containers: ``Sequential`` (layers applied in order) and ``LayerList`` (a list of layers a
composite layer owns, like torch.nn.ModuleList). Their children are named ``"0"``, ``"1"``...
as in torch, so ``features.3.conv.1.0.running_var`` reads the same in both."""

from __future__ import annotations

from .._typing import ArrayLike, FloatArray
from .base import Layer
from .registry import register_layer

__all__ = ["LayerList", "Sequential"]


def _check_layer(layer, where):
    if not isinstance(layer, Layer):
        raise TypeError(f"{where} is not a Layer: {layer!r:.100}")
    return layer


class _IndexedLayers(Layer):
    """Children named by their position."""

    _config_fields = _layer_list_fields = ("layers",)

    def _extend(self, layers, where):
        layers = list(layers)
        for i, layer in enumerate(layers):
            _check_layer(layer, f"{where}: argument {i}")
        for layer in layers:
            self._adopt(str(len(self._children)), layer)

    @property
    def layers(self):
        """The layers, in order (a new list)."""
        return list(self._children.values())

    def __len__(self):
        return len(self._children)

    def __iter__(self):
        return iter(list(self._children.values()))

    def __getitem__(self, i):
        layers = list(self._children.values())
        if isinstance(i, slice):
            # a view sharing the layers (they stay owned by this container), as torch's slice
            view = type(self).__new__(type(self))
            Layer.__init__(view)
            for k, layer in enumerate(layers[i]):
                view._children[str(k)] = layer
            return view
        return layers[i]

    def append(self, layer):
        """Add ``layer`` at the end (its name is its index); returns self."""
        self._extend([layer], f"{type(self).__name__}.append")
        return self

    def extend(self, layers):
        self._extend(layers, f"{type(self).__name__}.extend")
        return self

    def get_config(self):
        """``{"layers": [the layers]}`` (``save`` describes each one recursively)."""
        return {"layers": self.layers}


@register_layer
class Sequential(_IndexedLayers):
    """Layers applied in order. Names in ``parameters()`` / ``state_dict()`` are those of
    torch.nn.Sequential: ``"<index>.<name>"`` (``"0.weight"``, ``"3.bias"``,
    ``"1.running_mean"``...), so a converted torch state_dict loads one to one."""

    def __init__(self, *layers: Layer) -> None:
        super().__init__()
        self._extend(layers, "Sequential")

    @classmethod
    def from_config(cls, config):
        return cls(*config["layers"])

    def forward(self, x: ArrayLike) -> FloatArray:
        for layer in self._children.values():
            x = layer.forward(x)
        return x

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        """Back through the layers in reverse order. With ``needs_input_grad=False`` the
        gradient with respect to the model's input is not computed (nor anything below the
        first layer that has parameters), and None is returned."""
        layers = self.layers
        stop = 0
        if not needs_input_grad:
            stop = next((i for i, layer in enumerate(layers) if layer.parameters()), len(layers))
        g = grad_out
        for i in range(len(layers) - 1, stop - 1, -1):
            g = layers[i].backward(g, needs_input_grad=needs_input_grad or i > stop)
        return g if needs_input_grad else None


@register_layer
class LayerList(_IndexedLayers):
    """A list of layers owned by the layer that holds it (torch.nn.ModuleList): their
    parameters, buffers and state are the owner's, under ``<attribute>.<index>.``. It has no
    forward of its own: the owner's forward calls the layers."""

    def __init__(self, layers=()):
        super().__init__()
        self._extend(layers, "LayerList")

    def forward(self, x: ArrayLike) -> FloatArray:
        raise NotImplementedError(
            "a LayerList has no forward: call its layers from the "
            "forward of the layer that holds it (or use Sequential)"
        )
