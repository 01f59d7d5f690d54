"""The exceptions a training run can end with."""
from __future__ import annotations

__all__ = ["NonFiniteLossError", "ResumeError", "TrainingInterrupted"]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run is stopped before the weights are updated."""


class ResumeError(ValueError):
    """The checkpoint given to ``resume`` does not fit this model, optimizer or file format."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`~tinynet.train.fit`; ``checkpoint`` is the path saved before
    stopping (or None)."""

    def __init__(self, checkpoint):
        super().__init__(f"training interrupted; checkpoint saved to {checkpoint}")
        self.checkpoint = checkpoint
