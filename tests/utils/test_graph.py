"""tinynet.utils.to_dot: the autograd graph as Graphviz DOT."""
import tinynet as tn
import tinynet.nn as nn
from tinynet.utils import to_dot


def test_dot_names_ops_and_parameters():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    loss = model(tn.randn(2, 3)).sum()
    dot = to_dot(loss, dict(model.named_parameters()))
    assert dot.startswith("digraph tinynet {") and dot.rstrip().endswith("}")
    for word in ('"Linear+ReLU"', '"Linear"', "Sum", "0.weight (4, 3)", "2.bias (1,)"):
        assert word in dot, word    # (Sequential runs the first layer's ReLU in its node)
    assert dot.count("->") >= 6


def test_dot_of_a_leaf_and_of_shared_subgraphs():
    x = tn.ones(2, requires_grad=True)
    assert "output (2,)" in to_dot(x)
    y = x * 2
    dot = to_dot((y * y + y).sum())
    assert dot.count('[label="Mul", shape=box]') == 2, "each node is drawn once"
