"""Registry entries: shape ops (reshape, transpose, permute, flatten, squeeze, unsqueeze,
expand, getitem, cat, stack, pad).

``getitem`` has three entries: basic indexing (ints, slices with steps, None, Ellipsis),
integer arrays with repeated indices (their gradients must accumulate), and boolean masks.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tinynet.functional as F
from ..registry import OpInfo, Sample, register
from .. import strategies as tst


def _x_and(kwargs_for_shape, min_dims=0, max_side=4):
    """(x,) with kwargs drawn from ``kwargs_for_shape(shape)`` (a strategy of dicts)."""
    def build():
        return tst.shapes(min_dims=min_dims, max_side=max_side).flatmap(
            lambda s: st.tuples(tst.arrays(s), kwargs_for_shape(s))).map(
            lambda xk: Sample((xk[0],), xk[1]))
    return build


# ----------------------------------------------------------------- reshape family
def _reshape_kwargs(shape):
    n = int(np.prod(shape))
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    two_d = st.sampled_from(divisors).map(lambda d: (d, n // d))
    with_minus_one = st.sampled_from(divisors).map(lambda d: (d, -1))
    return st.fixed_dictionaries({"shape": st.one_of(
        st.just((n,)), st.just(tuple(reversed(shape))), two_d, with_minus_one,
        st.just((1,) + tuple(shape)))})


register(OpInfo("reshape", lambda x, shape: F.reshape(x, shape), _x_and(_reshape_kwargs),
                lambda torch, x, shape: torch.reshape(x, shape)))


def _transpose_kwargs(shape):
    n = len(shape)
    return st.fixed_dictionaries({"dim0": st.integers(-n, n - 1), "dim1": st.integers(-n, n - 1)})


register(OpInfo("transpose", F.transpose, _x_and(_transpose_kwargs, min_dims=1),
                lambda torch, x, dim0, dim1: torch.transpose(x, dim0, dim1)))


def _permute_kwargs(shape):
    return st.fixed_dictionaries({"dims": st.permutations(range(len(shape))).map(tuple)})


register(OpInfo("permute", lambda x, dims: F.permute(x, dims), _x_and(_permute_kwargs),
                lambda torch, x, dims: x.permute(dims)))


def _flatten_kwargs(shape):
    n = max(len(shape), 1)
    return st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).map(
        lambda se: {"start_dim": min(se), "end_dim": max(se) - n if max(se) % 2 else max(se)})


register(OpInfo("flatten", F.flatten, _x_and(_flatten_kwargs),
                lambda torch, x, start_dim, end_dim: torch.flatten(x, start_dim, end_dim)))


def _squeeze_samples():
    shapes = st.lists(st.sampled_from([1, 1, 2, 3]), min_size=0, max_size=4).map(tuple)

    def for_shape(s):
        n = len(s)
        dim = st.none() if n == 0 else st.one_of(st.none(), st.integers(-n, n - 1))
        return st.tuples(tst.arrays(s), st.fixed_dictionaries({"dim": dim}))
    return shapes.flatmap(for_shape).map(lambda xk: Sample((xk[0],), xk[1]))


register(OpInfo("squeeze", F.squeeze, _squeeze_samples,
                lambda torch, x, dim: torch.squeeze(x) if dim is None else torch.squeeze(x, dim)))


def _unsqueeze_kwargs(shape):
    n = len(shape)
    return st.fixed_dictionaries({"dim": st.integers(-n - 1, n)})


register(OpInfo("unsqueeze", F.unsqueeze, _x_and(_unsqueeze_kwargs),
                lambda torch, x, dim: torch.unsqueeze(x, dim)))


def _expand_samples():
    """A shape with some size-1 dims, and sizes that grow them (and maybe new leading dims)."""
    shapes = st.lists(st.sampled_from([1, 1, 2, 3]), min_size=0, max_size=3).map(tuple)

    def for_shape(s):
        grown = st.tuples(*[st.sampled_from([1, 3, -1]) if n == 1 else st.sampled_from([n, -1])
                            for n in s])
        lead = st.lists(st.integers(1, 3), max_size=2).map(tuple)
        return st.tuples(tst.arrays(s), st.tuples(lead, grown).map(lambda lg: lg[0] + lg[1]))
    return shapes.flatmap(for_shape).map(lambda xs: Sample((xs[0],), {"sizes": xs[1]}))


register(OpInfo("expand", lambda x, sizes: F.expand(x, sizes), _expand_samples,
                lambda torch, x, sizes: x.expand(sizes)))


# ----------------------------------------------------------------- indexing
def _torch_index(torch, index):
    items = index if isinstance(index, tuple) else (index,)
    out = tuple(torch.from_numpy(i) if isinstance(i, np.ndarray) else i for i in items)
    return out if isinstance(index, tuple) else out[0]


def _getitem_torch(torch, x, index):
    return x[_torch_index(torch, index)]


@st.composite
def _basic_index(draw, shape):
    """A tuple of ints, slices (any step sign... positive: torch has no negative steps),
    None and at most one Ellipsis."""
    items, dim = [], 0
    n = len(shape)
    use_ellipsis = n > 0 and draw(st.booleans())
    for d in range(n):
        if use_ellipsis and d == n - 1:
            items.append(Ellipsis)
            break
        kind = draw(st.sampled_from(["int", "slice", "none_then_slice"]))
        size = shape[d]
        if kind == "int":
            items.append(draw(st.integers(-size, size - 1)))
        else:
            if kind == "none_then_slice":
                items.append(None)
            start = draw(st.one_of(st.none(), st.integers(-size, size - 1)))
            stop = draw(st.one_of(st.none(), st.integers(-size, size)))
            step = draw(st.one_of(st.none(), st.integers(1, 3)))
            items.append(slice(start, stop, step))
    return tuple(items)


def _basic_samples():
    return tst.shapes(min_dims=1).flatmap(
        lambda s: st.tuples(tst.arrays(s), _basic_index(s))).map(
        lambda xi: Sample((xi[0],), {"index": xi[1]}))


@st.composite
def _int_array_index(draw, shape):
    """An integer array (with repeats, negative entries) on one dim, slices elsewhere."""
    d = draw(st.integers(0, len(shape) - 1))
    size = shape[d]
    idx = np.array(draw(st.lists(st.integers(-size, size - 1), min_size=1, max_size=6)), dtype=np.int64)
    if size and draw(st.booleans()):   # force a repeated index
        idx = np.concatenate([idx, idx[:1]])
    return (slice(None),) * d + (idx,)


def _int_array_samples():
    return tst.shapes(min_dims=1).flatmap(
        lambda s: st.tuples(tst.arrays(s), _int_array_index(s))).map(
        lambda xi: Sample((xi[0],), {"index": xi[1]}))


def _bool_mask_samples():
    """A boolean mask over the leading dims (all of them, or the first only)."""
    def for_shape(s):
        lead = st.sampled_from([len(s), 1])
        return st.tuples(tst.arrays(s), lead.flatmap(lambda k: tst.arrays(s[:k]).map(lambda a: a > 0)))
    return tst.shapes(min_dims=1).flatmap(for_shape).map(
        lambda xm: Sample((xm[0],), {"index": xm[1]}))


def _getitem(x, index):
    """``x[index]`` with NumPy index arrays moved to ``x``'s device (as Tensors)."""
    import tinynet as tn
    if not isinstance(x, tn.Tensor):
        return F.getitem(x, index)
    items = index if isinstance(index, tuple) else (index,)
    moved = tuple(tn.tensor(i, device=x.device) if isinstance(i, np.ndarray) else i for i in items)
    return F.getitem(x, moved if isinstance(index, tuple) else moved[0])


register(OpInfo("getitem", _getitem, _basic_samples, _getitem_torch))
register(OpInfo("getitem_int_array", _getitem, _int_array_samples, _getitem_torch,
                note="repeated indices must accumulate gradient (scatter-add)"))
register(OpInfo("getitem_bool_mask", _getitem, _bool_mask_samples, _getitem_torch))


# ----------------------------------------------------------------- joining
def _join_samples(same_shape):
    """2-3 arrays that agree on every size (``same_shape``) or all but ``dim``."""
    def build():
        def for_shape(shape):
            n = len(shape)
            count = st.integers(2, 3)
            if same_shape:
                return st.tuples(count.flatmap(lambda k: st.tuples(*[tst.arrays(shape)] * k)),
                                 st.integers(-n - 1, n))
            def parts(dim):
                def one(size):
                    s = list(shape)
                    s[dim] = size
                    return tst.arrays(tuple(s))
                return count.flatmap(lambda k: st.tuples(*[st.integers(1, 3).flatmap(one)] * k))
            return st.integers(-n, n - 1).flatmap(lambda d: st.tuples(parts(d % n), st.just(d)))
        return tst.shapes(min_dims=0 if same_shape else 1).flatmap(for_shape).map(
            lambda xd: Sample(tuple(xd[0]), {"dim": xd[1]}))
    return build


register(OpInfo("cat", lambda *xs, dim: F.cat(list(xs), dim), _join_samples(False),
                lambda torch, *xs, dim: torch.cat(xs, dim)))
register(OpInfo("stack", lambda *xs, dim: F.stack(list(xs), dim), _join_samples(True),
                lambda torch, *xs, dim: torch.stack(xs, dim)))


def _pad_kwargs(shape):
    n = len(shape)

    def keep_one(pad):
        # negative sizes crop (PyTorch's rule); keep at least one entry of every dim
        pad = list(pad)
        for k in range(len(pad) // 2):
            size = shape[n - 1 - k]
            if size + min(pad[2 * k], 0) + min(pad[2 * k + 1], 0) < 1:
                pad[2 * k] = max(pad[2 * k], 0)
                pad[2 * k + 1] = max(pad[2 * k + 1], 0)
        return tuple(pad)
    return st.integers(0, n).flatmap(lambda k: st.fixed_dictionaries({
        "pad": st.lists(st.integers(-2, 2), min_size=2 * k, max_size=2 * k).map(keep_one),
        "value": st.sampled_from([None, 0.0, -1.5])}))


register(OpInfo("pad", F.pad, _x_and(_pad_kwargs, min_dims=1),
                lambda torch, x, pad, value: torch.nn.functional.pad(x, pad, value=value)))
