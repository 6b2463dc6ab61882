"""Optimizers, learning-rate schedules and gradient clipping, with PyTorch's rules and names.

Optimizers (torch.optim's update rules, checked against torch step by step in float64):
``SGD`` (momentum, dampening, nesterov), ``Adam`` / ``AdamW`` (amsgrad, decoupled weight
decay), ``RMSprop`` (alpha, momentum, centered), ``Adagrad`` (lr_decay,
initial_accumulator_value); every one has ``weight_decay`` and ``maximize``.

An optimizer holds references to the parameter arrays and to their gradient arrays;
``step()`` updates the parameters in place from the gradients, ``zero_grad()`` sets the
gradients to 0. Build one from

- a model: ``SGD(model, lr=0.1)`` (its ``parameters()`` and ``grads()``),
- an iterable of ``(param, grad)`` array pairs, or
- parameter groups, as in torch: ``SGD([{'params': model[0]}, {'params': model[2], 'lr':
  0.01}], lr=0.1, momentum=0.9)``: each group's keys override the constructor's values;
  ``add_param_group({...})`` adds one later.

``opt.param_groups`` lists the groups (dicts with ``'params'`` = the pairs and the
hyperparameters); ``opt.lr = x`` sets every group's learning rate (reading ``opt.lr`` needs
the groups to agree, else AttributeError). ``opt.state`` is a list with one dict per
parameter, in group order (torch keys it by tensor). Hyperparameters are checked when set and
again at each ``step()``.

``state_dict()`` / ``load_state_dict()`` use torch's layout and key names::

    {'state': {0: {'step': 3.0, 'exp_avg': array, 'exp_avg_sq': array}, ...},
     'param_groups': [{'lr': 0.001, 'betas': (0.9, 0.999), ..., 'params': [0, 1, 2]}]}

(state names: SGD ``momentum_buffer``; Adam/AdamW ``step``, ``exp_avg``, ``exp_avg_sq``,
``max_exp_avg_sq``; RMSprop ``step``, ``square_avg``, ``momentum_buffer``, ``grad_avg``;
Adagrad ``step``, ``sum``). ``'step'`` is a Python float where torch keeps a 0-d float32
tensor; the arrays are copies. Training resumes exactly: saving after k steps and loading
into a fresh optimizer gives bitwise the parameters of an uninterrupted run. Loading checks
the number of groups and parameters, every hyperparameter and every state entry's name,
shape and dtype (the parameter's) before anything changes. torch's implementation switches
(``foreach``, ``fused``, ``capturable``, ``differentiable``) are accepted only at their
defaults.

``clip_grad_norm(model_or_optimizer, max_norm, norm_type=2.0, error_if_nonfinite=False)``
and ``clip_grad_value(..., clip_value)`` clip gradients in place (torch's
``clip_grad_norm_`` / ``clip_grad_value_``); the first returns the total norm.

``convext.optim.lr_scheduler``: StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR,
LinearLR, OneCycleLR, ReduceLROnPlateau, SequentialLR, with torch's arguments and exactly
torch's learning-rate sequences; ``step()`` after ``optimizer.step()``.
"""

from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .clip import clip_grad_norm, clip_grad_value
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = [
    "Adagrad",
    "Adam",
    "AdamW",
    "Optimizer",
    "RMSprop",
    "SGD",
    "clip_grad_norm",
    "clip_grad_value",
    "lr_scheduler",
]
