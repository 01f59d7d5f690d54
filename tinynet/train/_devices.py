"""Where batches go: to the device of the model's parameters."""
from __future__ import annotations


def to_device(t, device):
    """``t`` on ``device`` (``t`` itself when already there or when ``device`` is None)."""
    return t if device is None or t.device == device else t.to(device)


def model_device(model):
    """The device of ``model``'s first parameter, or None for a model without parameters."""
    for p in model.parameters():
        return p.device
    return None
