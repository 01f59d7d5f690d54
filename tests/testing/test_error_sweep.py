"""No NumPy exception reaches a user: bad inputs swept over every registered op.

Each registry entry's valid sample is mutated (a tensor argument replaced by a string, an
integer tensor, a tensor with an extra dimension, an empty tensor; a ``dim`` out of range;
keyword arguments of the wrong type or value). A mutation may be valid (then nothing is
checked); when the op raises, the error must be a ``ValueError``, ``TypeError`` or
``IndexError`` raised from a tinynet frame (not from inside NumPy), and its message must
start with the name of a tinynet op (``"conv2d: ..."``).
"""
import os
import re
import traceback

import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck

import tinynet as tn
from tinynet.testing import all_ops

OPS = all_ops()
TINYNET_DIR = os.path.dirname(tn.__file__)
_ALLOWED = (ValueError, TypeError, IndexError)


def _tensors(sample):
    out = []
    for a in sample.args:
        if isinstance(a, (np.ndarray, np.generic)):
            out.append(tn.tensor(np.asarray(a)))
        else:
            out.append(a)
    return out


def _mutations(args, kwargs):
    """(label, args, kwargs) variants of one valid call."""
    tensor_pos = [i for i, a in enumerate(args) if isinstance(a, tn.Tensor)]
    for i in tensor_pos:
        a = args[i]
        for label, bad in (("a string", "not a tensor"),
                           ("an int64 tensor", tn.tensor(np.ones(a.shape, dtype=np.int64))),
                           ("an extra dimension", tn.tensor(np.ones(tuple(a.shape) + (2,)))),
                           ("an empty tensor", tn.tensor(np.ones((0,))))):
            yield f"argument {i} as {label}", args[:i] + [bad] + args[i + 1:], kwargs
    for key, value in kwargs.items():
        bads = [("a string", "bogus"), ("a list of strings", ["x"])]
        if key == "dim" or key.endswith("dim"):
            bads += [("out of range", 17), ("out of range", -17)]
        elif isinstance(value, bool):
            pass
        elif isinstance(value, int):
            bads += [("negative", -5)]
        elif isinstance(value, float):
            bads += [("NaN-free negative", -3.5)]
        for label, bad in bads:
            yield f"{key}={label}", args, dict(kwargs, **{key: bad})


def _op_names(info):
    names = {info.name, getattr(info.op, "__name__", "")}
    parts = info.name.split("[")[0].split("_")
    names.update("_".join(parts[:k]) for k in range(1, len(parts) + 1))
    return {n for n in names if n and n != "<lambda>"}


def _check_error(info, label, error):
    where = f"{info.name} with {label}: {type(error).__name__}: {error}"
    assert isinstance(error, _ALLOWED), f"unexpected exception type: {where}"
    frames = traceback.extract_tb(error.__traceback__)
    raiser = frames[-1].filename
    assert raiser.startswith(TINYNET_DIR), f"raised from {raiser}, outside tinynet: {where}"
    head = re.match(r"([\w.]+):", str(error).strip("'\""))
    assert head and head.group(1) in _op_names(info), \
        f"message does not start with the op's name {sorted(_op_names(info))}: {where}"


@pytest.mark.parametrize("info", OPS, ids=lambda o: o.name)
def test_bad_inputs_raise_named_tinynet_errors(info):
    """Fails if a mutated call ends in a NumPy error, a bare Python error, or a message that
    does not name the op."""
    @settings(max_examples=3, suppress_health_check=list(HealthCheck), deadline=None,
              derandomize=True)
    @given(info.samples())
    def check(sample):
        args = _tensors(sample)
        for label, bad_args, bad_kwargs in _mutations(args, dict(sample.kwargs)):
            try:
                info.op(*bad_args, **bad_kwargs)
            except Exception as e:  # noqa: BLE001 - every exception is inspected
                _check_error(info, label, e)
    check()
