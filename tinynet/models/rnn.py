"""Sequence models built on :class:`tinynet.nn.LSTM`.

``LSTMRegressor``: sequence -> LSTM -> last step -> dense -> sigmoid; its defaults are the
classic TensorFlow ``dynamic_rnn`` example (10 steps of 5 features, 10 hidden units, one
output in (0, 1)).

``LSTMClassifier``: sequence -> LSTM -> last step -> dense logits over ``num_classes``
(for example an image read row by row: 28 steps of 28 pixels for MNIST, 8 of 8 for the
scikit-learn digits).

Both take batch-first input ``(B, T, features)`` and an optional ``lengths`` for padded
batches; "last step" then means each sequence's own last real step (``h_n`` of the top
layer, which the LSTM already returns per sequence).
"""
from __future__ import annotations

from .. import functional as F
from ..nn.linear import Linear
from ..nn.module import Module
from ..nn.rnn import LSTM
from ..tensor import Tensor

__all__ = ["LSTMRegressor", "LSTMClassifier"]


class _LastStep(Module):
    def __init__(self, input_size, hidden_size, num_layers, bidirectional, dropout, out_features,
                 dtype=None, device=None):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.lstm = LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True,
                         bidirectional=bidirectional, dropout=dropout, dtype=dtype, device=device)
        self.fc = Linear(hidden_size * (2 if bidirectional else 1), out_features, device=device,
                         dtype=dtype)

    def features(self, x: Tensor, lengths=None) -> Tensor:
        """The top layer's final hidden state(s): ``(B, D*H)``."""
        if not isinstance(x, Tensor) or x.ndim != 3:
            raise ValueError(f"{type(self).__name__}: expected input of shape (batch, steps, "
                             f"{self.input_size}), got "
                             f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
        _, (h_n, _) = self.lstm(x, lengths=lengths)
        D = 2 if self.lstm.bidirectional else 1
        last = [h_n[h_n.shape[0] - D + d] for d in range(D)]
        return last[0] if D == 1 else F.cat(last, 1)


class LSTMRegressor(_LastStep):
    """``sigmoid(dense(h_T))`` for a ``(B, steps, input_size)`` sequence; output ``(B, output_size)``.

    >>> import tinynet as tn
    >>> model = LSTMRegressor()                      # 10 steps x 5 features, 10 hidden units
    >>> tuple(model(tn.randn(4, 10, 5)).shape)
    (4, 1)
    """

    def __init__(self, input_size: int = 5, hidden_size: int = 10, output_size: int = 1,
                 num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0,
                 dtype=None, device=None):
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout, output_size,
                         dtype, device)

    def forward(self, x: Tensor, lengths=None) -> Tensor:
        return F.sigmoid(self.fc(self.features(x, lengths)))


class LSTMClassifier(_LastStep):
    """Logits ``(B, num_classes)`` from the last step of a ``(B, steps, input_size)`` sequence.

    >>> import tinynet as tn
    >>> model = LSTMClassifier(input_size=8, hidden_size=32, num_classes=10)   # 8x8 digits, row by row
    >>> tuple(model(tn.randn(2, 8, 8)).shape)
    (2, 10)
    """

    def __init__(self, input_size: int = 28, hidden_size: int = 128, num_classes: int = 10,
                 num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0,
                 dtype=None, device=None):
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout, num_classes,
                         dtype, device)
        self.num_classes = num_classes

    def forward(self, x: Tensor, lengths=None) -> Tensor:
        return self.fc(self.features(x, lengths))
