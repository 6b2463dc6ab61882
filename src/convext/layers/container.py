"""Sequential container."""
import numpy as np

from .base import Layer
from .registry import register_layer

__all__ = ["Sequential"]


@register_layer
class Sequential(Layer):
    """Layers applied in order. Names in ``parameters()`` / ``state_dict()`` are those of
    torch.nn.Sequential: ``"<index>.<name>"`` (``"0.weight"``, ``"3.bias"``,
    ``"1.running_mean"``...), so a converted torch state_dict loads one to one."""

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: argument {i} is not a Layer: {layer!r}")
        self.layers = list(layers)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Sequential(*self.layers[i])
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def append(self, layer):
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.append: not a Layer: {layer!r}")
        self.layers.append(layer)
        return self

    def _collect(self, what):
        out = {}
        for i, layer in enumerate(self.layers):
            for k, v in getattr(layer, what)().items():
                out[f"{i}.{k}"] = v
        return out

    def parameters(self):
        return self._collect("parameters")

    def grads(self):
        return self._collect("grads")

    def buffers(self):
        return self._collect("buffers")

    def state_dict(self):
        """Copies of every layer's parameters then buffers, layer by layer (torch's order)."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers)
                for k, v in layer.state_dict().items()}

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_out, needs_input_grad=True):
        """Back through the layers in reverse order. With ``needs_input_grad=False`` the
        gradient with respect to the model's input is not computed (nor anything below the
        first layer that has parameters), and None is returned."""
        stop = 0
        if not needs_input_grad:
            stop = next((i for i, layer in enumerate(self.layers) if layer.parameters()),
                        len(self.layers))
        g = grad_out
        for i in range(len(self.layers) - 1, stop - 1, -1):
            g = self.layers[i].backward(g, needs_input_grad=needs_input_grad or i > stop)
        return g if needs_input_grad else None

    def train(self, mode=True):
        super().train(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def _allocate(self):
        for layer in self.layers:
            layer._allocate()
        return self

    def reset_parameters(self, rng=None):
        rng = np.random.default_rng(rng)
        for layer in self.layers:
            layer.reset_parameters(rng)
        return self

    _config_fields = _layer_list_fields = ("layers",)  # the constructor takes *layers

    def get_config(self):
        """``{"layers": [the layers]}`` (``save`` describes each one recursively)."""
        return {"layers": list(self.layers)}

    @classmethod
    def from_config(cls, config):
        layers = config["layers"]
        if not isinstance(layers, list):
            raise TypeError(f"layers must be a list of layer descriptions, got {layers!r:.100}")
        return cls(*layers)

    def __repr__(self):
        if not self.layers:
            return "Sequential()"
        lines = []
        for i, layer in enumerate(self.layers):
            sub = repr(layer).replace("\n", "\n  ")
            lines.append(f"  ({i}): {sub}")
        return "Sequential(\n" + "\n".join(lines) + "\n)"
