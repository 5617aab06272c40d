"""The tutorial's two PyTorch programs (../shared/reference/basic-llm-concepts.md), as PyTorch.

Checked exactly two ways: from the torch code alone (torch.export captures the program, whose
translation is the exact reference), and against the JAX cases in tutorial.py; the two exact
references agree (tests/test_torch.py). The library loader skips
this module (its name starts with "_"): it holds torch programs, not JAX cases, and imports torch.
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import diffcheck

from . import tutorial


def sigmoid_neuron(w, b, x, y):
    """The tutorial's sigmoid neuron: z = x·w + b, a = σ(z), L = F.binary_cross_entropy(a, y)."""
    z = x * w + b
    a = torch.sigmoid(z)
    return F.binary_cross_entropy(a, y)


def tutorial_neuron_gradients():
    """The tutorial's program as printed: requires_grad tensors, loss.backward(), w.grad and b.grad."""
    x = torch.tensor([1.1])
    y = torch.tensor([1.0])
    w = torch.tensor([2.2], requires_grad=True)
    b = torch.tensor([0.0], requires_grad=True)
    loss = sigmoid_neuron(w, b, x, y)
    loss.backward()
    return w.grad, b.grad


class SimpleNet(nn.Module):
    """The tutorial's network: Linear(10→5) → ReLU → Linear(5→1) → Sigmoid."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 5)  # Input layer to hidden layer
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(5, 1)  # Hidden layer to output layer
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        h = self.relu(self.fc1(x))
        y_hat = self.sigmoid(self.fc2(h))
        return y_hat


#: The torch parameter each parameter of the JAX case `simple_net` stands for (same shapes).
SIMPLE_NET_PARAMETERS = {"fc1.weight": "W1", "fc1.bias": "b1", "fc2.weight": "W2", "fc2.bias": "b2"}


def check_sigmoid_neuron(dtype=None):
    """The neuron at the tutorial's point x=1.1, y=1, w=2.2, b=0, with the tutorial's tensor shapes
    (in float64, so that the point is 1.1 and not float32's 1.10000002)."""
    x, y = torch.tensor([1.1], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64)
    w, b = torch.tensor([2.2], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64)
    return diffcheck.check_grad(
        sigmoid_neuron, w, b, x, y, argnums=(0, 1), dtype=dtype, reference=tutorial.sigmoid_neuron_loss
    )


def check_simple_net(seed=0, dtype=None):
    """SimpleNet as torch initialises it (seeded), a random input and the label 1, under nn.BCELoss."""
    torch.manual_seed(seed)
    net = SimpleNet()
    inputs = torch.randn(1, 10)
    # The tutorial's labels = torch.tensor([1.0]) no longer matches the output's shape (1, 1):
    # nn.BCELoss raises "Using a target size … that is different to the input size".
    labels = torch.tensor([[1.0]])
    criterion = nn.BCELoss()
    return diffcheck.check_module(
        net,
        lambda outputs: criterion(outputs, labels.to(outputs.dtype)),
        inputs,
        reference=tutorial.simple_net,
        parameters=SIMPLE_NET_PARAMETERS,
        data={"x": inputs.numpy().reshape(10).astype(np.float64), "y": 1.0},
        point=f"seed-{seed}",
        dtype=dtype,
    )


def check_simple_net_as_written(seed=0):
    """SimpleNet as the tutorial holds it — float32, nn.BCELoss, the torch code alone: the exact
    reference is the module's own program (captured by torch.export), no JAX twin."""
    torch.manual_seed(seed)
    net = SimpleNet()
    inputs = torch.randn(1, 10)
    labels = torch.tensor([[1.0]])
    criterion = nn.BCELoss()
    return diffcheck.check_grad(net, inputs, loss=lambda outputs: criterion(outputs, labels.to(outputs.dtype)))


def check_sigmoid_neuron_as_written():
    """The tutorial's neuron, its own tensors (float32 as printed), exact from the torch code alone."""
    x, y = torch.tensor([1.1]), torch.tensor([1.0])
    w, b = torch.tensor([2.2]), torch.tensor([0.0])
    return diffcheck.check_grad(sigmoid_neuron, w, b, x, y, argnums=(0, 1), dtype="float32")


if __name__ == "__main__":  # python -m diffcheck.cases._torch_tutorial
    reports = [check_sigmoid_neuron(), check_simple_net(), check_sigmoid_neuron_as_written(), check_simple_net_as_written()]
    for report in reports:
        print(report, end="\n\n")
    raise SystemExit(0 if all(r.ok for r in reports) else 1)
