"""fakecuda: a strict stand-in for CUDA, for tests only. It is not a GPU.

No line of tinynet's CuPy path can run without an NVIDIA GPU. This module lets the test
suite take that path on a CPU: its arrays are NumPy arrays wrapped so that the code under
test sees CuPy's rules instead of NumPy's, and it plugs into ``tinynet.backend`` as a
device named ``fakecuda`` (``TINYNET_TEST_DEVICE=fakecuda`` runs the whole suite on it).

The rules it enforces, each a classic way a NumPy program breaks when moved to CuPy:

* **the namespace is CuPy's**: ``xp`` (the stand-in's module) has only the names that
  CuPy has (the list in ``_cupy_api.py``, generated from the CuPy version named there);
  ``xp.foo`` for a NumPy-only ``foo`` is an ``AttributeError``. Arrays have only the
  attributes ``cupy.ndarray`` has.
* **no implicit host copy**: ``numpy.asarray(x)``, ``x.__array__()``, any ``numpy.*``
  function or ufunc applied to a device array raise ``TypeError``; only ``x.get()`` /
  ``backend.asnumpy`` move an array to the host. ``float(x)``, ``int(x)``, ``bool(x)``,
  ``x.item()`` and ``x.tolist()`` work, as on CuPy (which synchronises there).
  (Stricter than CuPy, which dispatches some ``numpy.*`` calls to itself: tinynet's
  rule is that numerical code calls its ``xp`` only.)
* **reductions and scalar indexing return 0-d arrays**, never NumPy scalars.
* **CuPy's signatures**: a keyword argument that CuPy's function or method does not take
  (``where=`` of a reduction, ``writeable=`` of ``as_strided``...) is a ``TypeError``.
* **devices do not mix**: a NumPy array met by a device array in an operation, an
  argument or an assignment is the ``TypeError`` CuPy raises.
* **kernels build**: ``xp.ElementwiseKernel`` accepts only kernels declared with
  ``backend.define_elementwise_kernel``, checks each call's arguments against the
  kernel's parameters as CuPy does, compiles CuPy's generated source for the call's
  dtypes and layout with NVRTC (:mod:`tinynet.testing.nvrtc`, where installed), and then
  runs a NumPy emulation of the kernel body (``KERNEL_EMULATIONS``).

What it cannot show: that the compiled kernels compute the right numbers, speed, memory,
streams and asynchrony. Those need a GPU (docs/tutorials/gpu.md).

Usage::

    from tinynet.testing import fakecuda
    fakecuda.install()                      # registers the device type "fakecuda"
    x = tinynet.ones(3, device="fakecuda")

``python -m tinynet.testing.fakecuda`` regenerates ``_cupy_api.py`` from the installed
CuPy.
"""
from __future__ import annotations

import copy as _copy
import types

import numpy

from .. import backend
from . import _cupy_api

__all__ = ["NAME", "DESCRIPTION", "install", "ndarray", "xp", "KERNEL_EMULATIONS"]

NAME = "fakecuda"
DESCRIPTION = "test stand-in: NumPy arrays under CuPy's rules, not a GPU"
_CUPY = f"CuPy {_cupy_api.CUPY_VERSION}"


def _host_copy_error(what: str) -> TypeError:
    return TypeError(f"fakecuda: {what} would copy a device array to the host implicitly; "
                     f"CuPy raises TypeError here. Use backend.asnumpy(x) (x.get()) explicitly, "
                     f"or the array's namespace xp instead of numpy")


def _mismatch_error(where: str) -> TypeError:
    return TypeError(f"fakecuda: a NumPy array met a device array in {where}; CuPy raises "
                     f"TypeError (Unsupported type <class 'numpy.ndarray'>). Move it with "
                     f"backend.to_device first")


# ------------------------------------------------------------------ crossing the boundary
def _unwrap(obj, where: str, host_ok: bool = False):
    """Stand-in arrays -> their NumPy arrays, recursively; NumPy arrays are refused."""
    if type(obj) is ndarray:
        return obj._host
    if isinstance(obj, numpy.ndarray):
        if host_ok:
            return obj
        raise _mismatch_error(where)
    if type(obj) in (list, tuple):
        return type(obj)(_unwrap(o, where, host_ok) for o in obj)
    if type(obj) is dict:
        return {k: _unwrap(v, where, host_ok) for k, v in obj.items()}
    return obj


def _wrap(obj):
    """NumPy results -> stand-in arrays; NumPy scalars become 0-d arrays, as on CuPy."""
    if isinstance(obj, numpy.ndarray):
        return ndarray(obj)
    if isinstance(obj, numpy.generic):
        return ndarray(numpy.asarray(obj))
    if type(obj) in (list, tuple):
        return type(obj)(_wrap(o) for o in obj)
    return obj


class _DeviceId:
    """What ``x.device`` is on CuPy (a ``cupy.cuda.Device``); only ``id`` is used."""
    id = 0

    def __repr__(self) -> str:
        return f"<{NAME} device 0 ({DESCRIPTION})>"


class _MemoryPointer:
    """``x.data`` on CuPy is a device pointer, not a buffer: any use of it as data fails."""

    def __repr__(self) -> str:
        return f"<{NAME} device memory pointer: not readable from the host>"


# ------------------------------------------------------------------ the array
class ndarray:
    """A device array of the stand-in: a NumPy array behind CuPy's rules."""

    __slots__ = ("_host",)
    __array_ufunc__ = None      # numpy ufuncs refuse it; NumPy's binary operators defer to ours

    def __init__(self, host: numpy.ndarray):
        if host.dtype.kind not in "biufc":
            raise TypeError(f"fakecuda: CuPy has no arrays of dtype {host.dtype} "
                            "(only bool, integer, floating and complex)")
        self._host = host

    # explicit ways to the host, as on CuPy
    def get(self, stream=None, order="C", out=None):
        if out is not None:
            out[...] = self._host
            return out
        return numpy.array(self._host, order=order)

    def item(self, *args):
        return self._host.item(*args)

    def tolist(self):
        return self._host.tolist()

    def __float__(self):
        return float(self._host)

    def __int__(self):
        return int(self._host)

    def __complex__(self):
        return complex(self._host)

    def __bool__(self):
        return bool(self._host)

    def __len__(self):
        return len(self._host)

    def __format__(self, spec):
        return format(self._host.item() if self._host.ndim == 0 else self._host, spec)

    def __repr__(self):
        return repr(self._host)

    def __str__(self):
        return str(self._host)

    # implicit ways to the host: refused
    def __array__(self, *args, **kwargs):
        raise _host_copy_error("numpy.asarray / __array__ on a device array")

    def __array_function__(self, func, types, args, kwargs):
        raise _host_copy_error(f"numpy.{func.__name__} applied to a device array")

    __hash__ = None

    @property
    def device(self):
        return _DeviceId()

    @property
    def data(self):
        return _MemoryPointer()

    def __iter__(self):
        if self._host.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (ndarray(self._host[k]) for k in range(len(self._host)))

    def __getitem__(self, key):
        return _wrap(self._host[_unwrap(key, "an index")])

    def __setitem__(self, key, value):
        self._host[_unwrap(key, "an index")] = _unwrap(value, "an assignment")

    def __copy__(self):
        return ndarray(self._host.copy())

    def __deepcopy__(self, memo):
        return ndarray(self._host.copy())

    def __reduce__(self):
        return (_from_host, (self._host.copy(),))

    def __getattr__(self, name):
        if name.startswith("__") or name not in _cupy_api.NDARRAY:
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r} "
                                 f"(fakecuda follows {_CUPY})")
        try:
            value = getattr(self._host, name)
        except AttributeError:
            raise AttributeError(f"fakecuda does not emulate cupy.ndarray.{name}") from None
        if callable(value):
            def method(*args, **kwargs):
                where = f"ndarray.{name}"
                _check_keywords(f"cupy.{where}", kwargs)
                return _wrap(value(*_unwrap(args, where), **_unwrap(kwargs, where)))
            return method
        return _wrap(value)


def _from_host(host):
    return ndarray(host)


def _binary(op: str):
    def method(self, other):
        result = getattr(self._host, op)(_unwrap(other, f"operator {op}"))
        return self if result is self._host else _wrap(result)
    method.__name__ = op
    return method


def _unary(op: str):
    def method(self):
        return _wrap(getattr(self._host, op)())
    method.__name__ = op
    return method


for _op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or",
            "xor", "lshift", "rshift"):
    for _form in ("__{}__", "__r{}__", "__i{}__"):
        setattr(ndarray, _form.format(_op), _binary(_form.format(_op)))
for _op in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__", "__divmod__"):
    setattr(ndarray, _op, _binary(_op))
for _op in ("__neg__", "__pos__", "__abs__", "__invert__"):
    setattr(ndarray, _op, _unary(_op))

# Attributes read directly: the NumPy array's, wrapped (shape, dtype... are plain values).
for _name in ("shape", "dtype", "ndim", "size", "strides", "itemsize", "nbytes", "flags"):
    setattr(ndarray, _name, property(lambda self, _n=_name: getattr(self._host, _n)))
for _name in ("T", "mT", "real", "imag", "base"):
    setattr(ndarray, _name, property(lambda self, _n=_name: _wrap(getattr(self._host, _n))))


# ------------------------------------------------------------------ the namespace
class _Namespace(types.ModuleType):
    """A module of CuPy-like names; one CuPy lacks is an AttributeError naming CuPy."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        full = f"{self.__name__}.{name}"
        if full.split(".", 1)[1] in _cupy_api.NAMESPACE:
            raise AttributeError(f"fakecuda does not emulate {full}")
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r} "
                             f"(fakecuda follows {_CUPY}; NumPy-only names do not exist on CuPy)")


def _check_keywords(qualname: str, kwargs) -> None:
    """A keyword CuPy's function does not take (``where=`` of a reduction...) is a TypeError."""
    allowed = _cupy_api.KEYWORDS.get(qualname.split(".", 1)[1])
    if allowed is not None and kwargs:
        unknown = set(kwargs) - set(allowed)
        if unknown:
            raise TypeError(f"{qualname}() got unexpected keyword argument(s) {sorted(unknown)}: "
                            f"{_CUPY} takes {list(allowed)}")


def _wrap_function(func, qualname: str, host_ok: bool = False):
    def call(*args, **kwargs):
        _check_keywords(qualname, kwargs)
        return _wrap(func(*_unwrap(args, qualname, host_ok), **_unwrap(kwargs, qualname, host_ok)))
    call.__name__ = getattr(func, "__name__", qualname)
    call.__qualname__ = qualname
    call.__doc__ = f"{qualname} on the fakecuda stand-in (NumPy's {call.__name__}, under CuPy's rules)."
    return call


class _Ufunc:
    """A ufunc with CuPy's methods (those ``cupy.add`` has); numpy arrays refused."""

    def __init__(self, ufunc, qualname: str):
        self._ufunc, self.__name__ = ufunc, ufunc.__name__
        self.nin, self.nout, self.nargs, self.types = ufunc.nin, ufunc.nout, ufunc.nargs, ufunc.types
        call = _wrap_function(ufunc, qualname)
        self._call = call
        for method in _cupy_api.UFUNC_METHODS:
            setattr(self, method, _wrap_function(getattr(ufunc, method), f"{qualname}.{method}"))

    def __call__(self, *args, **kwargs):
        return self._call(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<fakecuda ufunc {self.__name__!r}>"


_ABSENT = object()


def _numpy_object(path: str):
    obj = numpy
    for part in path.split("."):
        obj = getattr(obj, part, _ABSENT)
        if obj is _ABSENT:
            return _ABSENT
    return obj


def _fill(module: _Namespace, prefix: str) -> None:
    """Puts into ``module`` every CuPy name under ``prefix`` that NumPy also has."""
    for full in sorted(_cupy_api.NAMESPACE):
        if not full.startswith(prefix) or "." in full[len(prefix):]:
            continue
        name = full[len(prefix):]
        if name in module.__dict__:
            continue
        obj = _numpy_object(full)
        if obj is _ABSENT:
            continue
        qualname = f"cupy.{full}"
        if isinstance(obj, numpy.ufunc):
            setattr(module, name, _Ufunc(obj, qualname))
        elif isinstance(obj, (type, types.ModuleType, numpy.dtype)) or not callable(obj):
            if not isinstance(obj, types.ModuleType):
                setattr(module, name, obj)          # dtypes, finfo, constants, newaxis...
        else:
            setattr(module, name, _wrap_function(obj, qualname))


xp = _Namespace("cupy", f"The fakecuda stand-in's CuPy namespace ({_CUPY}'s names).")
xp.ndarray = ndarray
for _name in ("array", "asarray", "asanyarray"):       # the explicit host-to-device copies
    setattr(xp, _name, _wrap_function(getattr(numpy, _name), f"cupy.{_name}", host_ok=True))
xp.asnumpy = lambda a, stream=None, order="C", out=None: (
    a.get(order=order, out=out) if type(a) is ndarray else numpy.array(a, order=order))
xp.get_array_module = lambda *arrays: xp if any(type(a) is ndarray for a in arrays) else numpy
for _sub in ("linalg", "random", "fft"):
    setattr(xp, _sub, _Namespace(f"cupy.{_sub}"))
    _fill(getattr(xp, _sub), _sub + ".")
xp.lib = _Namespace("cupy.lib")
xp.lib.stride_tricks = _Namespace("cupy.lib.stride_tricks")
_fill(xp.lib.stride_tricks, "lib.stride_tricks.")
_fill(xp, "")
for _name in ("array_equal", "array_equiv", "allclose"):     # a 0-d array on CuPy, a bool on NumPy
    setattr(xp, _name, (lambda f: lambda *a, **k: ndarray(numpy.asarray(f(*a, **k))))(getattr(xp, _name)))


class _CudaDevice:
    """``cupy.cuda.Device(i)`` as a context manager; the stand-in has device 0 only."""

    def __init__(self, index=0):
        if index not in (0, None):
            raise ValueError(f"fakecuda has one device (0), got {index}")
        self.id = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


xp.cuda = _Namespace("cupy.cuda")
xp.cuda.Device = _CudaDevice

cupyx = _Namespace("cupyx")


def _scatter_add(a, slices, value):
    """``cupyx.scatter_add``: unbuffered ``a[slices] += value`` on the stand-in."""
    if type(a) is not ndarray:
        raise TypeError(f"cupyx.scatter_add: expected a device array, got {type(a).__name__}")
    numpy.add.at(a._host, _unwrap(slices, "cupyx.scatter_add"), _unwrap(value, "cupyx.scatter_add"))


cupyx.scatter_add = _scatter_add
cupyx.scipy = _Namespace("cupyx.scipy")
cupyx.scipy.special = _Namespace("cupyx.scipy.special")


def _erf(x):
    """``cupyx.scipy.special.erf`` on the stand-in: the host error function of its array."""
    if type(x) is not ndarray:
        raise TypeError(f"cupyx.scipy.special.erf: expected a device array, got {type(x).__name__}")
    return _wrap(backend.erf(x._host))


cupyx.scipy.special.erf = _erf


# ------------------------------------------------------------------ elementwise kernels
def _parse_params(text: str):
    """``"raw T a, int32 n"`` -> ``[(raw, type, name), ...]`` as CuPy reads parameters."""
    params = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        words = item.split()
        raw = words[0] == "raw"
        if raw:
            words = words[1:]
        if len(words) != 2:
            raise ValueError(f"fakecuda: cannot read kernel parameter {item!r}")
        params.append((raw, words[0], words[1]))
    return params


def _lstm_forward_emulation(c_prev, H, c, h, tanh_c, gates):
    """``tinynet_lstm_fwd``'s body, vectorised over the element index ``i``."""
    i = numpy.arange(c.size)
    base = (i // H) * 4 * H + i % H
    flat = gates.reshape(-1)
    ig = 0.5 * numpy.tanh(flat[base]) + 0.5
    fg = 0.5 * numpy.tanh(flat[base + H]) + 0.5
    gg = numpy.tanh(flat[base + 2 * H])
    og = 0.5 * numpy.tanh(flat[base + 3 * H]) + 0.5
    flat[base], flat[base + H], flat[base + 2 * H], flat[base + 3 * H] = ig, fg, gg, og
    gates[...] = flat.reshape(gates.shape)
    cn = fg * c_prev.reshape(-1) + ig * gg
    tc = numpy.tanh(cn)
    c[...] = cn.reshape(c.shape)
    tanh_c[...] = tc.reshape(c.shape)
    h[...] = (og * tc).reshape(c.shape)


def _lstm_backward_emulation(acts, c_prev, tanh_c, dh, dc, H, dc_prev, d_gates):
    """``tinynet_lstm_bwd``'s body, vectorised over the element index ``i``."""
    i = numpy.arange(dc_prev.size)
    base = (i // H) * 4 * H + i % H
    a = acts.reshape(-1)
    ig, fg, gg, og = a[base], a[base + H], a[base + 2 * H], a[base + 3 * H]
    c_prev, tanh_c, dh, dc = (v.reshape(-1) for v in (c_prev, tanh_c, dh, dc))
    dct = dc + dh * og * (1 - tanh_c * tanh_c)
    flat = d_gates.reshape(-1)
    flat[base] = dct * gg * ig * (1 - ig)
    flat[base + H] = dct * c_prev * fg * (1 - fg)
    flat[base + 2 * H] = dct * ig * (1 - gg * gg)
    flat[base + 3 * H] = dh * tanh_c * og * (1 - og)
    d_gates[...] = flat.reshape(d_gates.shape)
    dc_prev[...] = (dct * fg).reshape(dc_prev.shape)


# kernel name -> NumPy function with the kernel's signature (inputs, then outputs), written
# from the CUDA body line by line; arrays arrive already broadcast for non-raw parameters.
KERNEL_EMULATIONS = {
    "tinynet_lstm_fwd": _lstm_forward_emulation,
    "tinynet_lstm_bwd": _lstm_backward_emulation,
}


class ElementwiseKernel:
    """``cupy.ElementwiseKernel`` on the stand-in: checked like CuPy, compiled, emulated."""

    def __init__(self, in_params, out_params, operation, name="kernel", **kwargs):
        self.source = backend.ElementwiseKernelSource(in_params, out_params, operation, name)
        if self.source not in backend.KERNEL_SOURCES:
            raise ValueError(f"fakecuda: kernel {name!r} was not declared with "
                             "backend.define_elementwise_kernel, so no test compiles it")
        self.in_params, self.out_params = _parse_params(in_params), _parse_params(out_params)
        self.name = name
        self._compiled = set()

    def __call__(self, *args):
        params = self.in_params + self.out_params
        if len(args) != len(params):
            raise TypeError(f"{self.name}: wrong number of arguments: expected "
                            f"{len(params)} (inputs then outputs), got {len(args)}")
        type_map, host, infos = {}, [], []
        for (raw, ctype, pname), arg in zip(params, args):
            where = f"kernel {self.name} argument {pname!r}"
            if isinstance(arg, numpy.ndarray):
                raise _mismatch_error(where)
            if type(arg) is ndarray:
                dtype = arg.dtype
                if len(ctype) == 1 and ctype.isupper():
                    if type_map.setdefault(ctype, dtype) != dtype:
                        raise TypeError(f"{where}: type {ctype} is {type_map[ctype]} from an earlier "
                                        f"argument but this one is {dtype} (CuPy: type is mismatched)")
                elif numpy.dtype(ctype) != dtype:
                    raise TypeError(f"{where}: declared {ctype}, got an array of {dtype}")
                host.append(arg._host)
                infos.append(("array", raw, arg.ndim, arg._host.flags.c_contiguous))
            else:
                if raw:
                    raise TypeError(f"{where}: a raw parameter takes a device array, got "
                                    f"{type(arg).__name__}")
                if len(ctype) == 1 and ctype.isupper():
                    raise TypeError(f"{where}: a scalar cannot fix type {ctype} here")
                host.append(numpy.dtype(ctype).type(arg))
                infos.append(("scalar", raw, 0, True))
        n_in = len(self.in_params)
        shapes = [[h.shape for h, (kind, raw, _, _) in zip(host[lo:hi], infos[lo:hi])
                   if kind == "array" and not raw] for lo, hi in ((0, n_in), (n_in, len(host)))]
        shape = numpy.broadcast_shapes(*(shapes[0] or shapes[1]))   # outputs are never broadcast
        for k, (h, (kind, raw, _, _)) in enumerate(zip(host, infos)):
            if kind == "array" and not raw:
                if k >= n_in and h.shape != shape:
                    raise ValueError(f"{self.name}: output {params[k][2]!r} has shape {h.shape}, "
                                     f"expected the broadcast shape {shape}")
                if k < n_in:
                    host[k] = numpy.broadcast_to(h, shape)
        self._compile(type_map, infos, len(shape))
        emulation = KERNEL_EMULATIONS.get(self.name)
        if emulation is None:
            raise NotImplementedError(f"fakecuda: no NumPy emulation of kernel {self.name!r}; "
                                      "add one to fakecuda.KERNEL_EMULATIONS")
        emulation(*host)

    def _compile(self, type_map, infos, ndim):
        from . import nvrtc
        if nvrtc.unavailable_reason() is not None:
            return
        # CuPy collapses contiguous non-raw operands to one dimension before generating code.
        contiguous = all(c for kind, raw, _, c in infos if kind == "array" and not raw)
        layout = tuple((kind, raw, nd if raw else (1 if contiguous else ndim), c)
                       for kind, raw, nd, c in infos)
        key = (tuple(sorted(type_map.items())), layout)
        if key not in self._compiled:
            nvrtc.compile_kernel(self.source, dict(type_map), layout)
            self._compiled.add(key)


xp.ElementwiseKernel = ElementwiseKernel


# ------------------------------------------------------------------ plugging in
class _StandIn:
    name = NAME
    description = DESCRIPTION

    def __init__(self):
        self.xp = xp
        self.cupyx = cupyx


def install() -> None:
    """Registers the ``fakecuda`` device with ``tinynet.backend`` (idempotent)."""
    backend.install_stand_in(_StandIn())


def _keywords(obj) -> "tuple | None":
    """Parameter names ``obj`` accepts by keyword (None: unknown, or ``**kwargs``)."""
    import inspect
    import re
    try:
        text = str(inspect.signature(obj))
    except (TypeError, ValueError):       # Cython: the signature is the docstring's first line
        match = re.match(r"[\w.]+\((.*)\)", (getattr(obj, "__doc__", None) or "").strip())
        if match is None:
            return None
        text = "(" + match.group(1) + ")"
    names = []
    for part in text.strip("()").split(","):
        part = part.strip().replace("\\", "")
        if part.startswith("**"):
            return None
        name = part.split("=")[0].split(":")[0].strip().lstrip("*")
        if name and name not in ("self", "/"):
            names.append(name)
    return tuple(names)


def _generate_api_file(path: str) -> None:
    import cupy
    names = {n for n in dir(cupy) if not n.startswith("_")}
    for sub in ("linalg", "random", "fft", "lib.stride_tricks"):
        mod = cupy
        for part in sub.split("."):
            mod = getattr(mod, part)
        names |= {f"{sub}.{n}" for n in dir(mod) if not n.startswith("_")}
    ndarray_names = {n for n in dir(cupy.ndarray) if not n.startswith("_")}
    methods = [m for m in ("reduce", "accumulate", "outer", "at", "reduceat") if hasattr(cupy.add, m)]
    keywords = {}
    for name in sorted(names):
        obj = cupy
        for part in name.split("."):
            obj = getattr(obj, part)
        if callable(obj) and not isinstance(obj, type):
            keywords[name] = _keywords(obj)
    for name in sorted(ndarray_names):
        if callable(getattr(cupy.ndarray, name)):
            keywords["ndarray." + name] = _keywords(getattr(cupy.ndarray, name))
    with open(path, "w") as f:
        f.write('"""Names of the CuPy API, generated by ``python -m tinynet.testing.fakecuda``."""\n')
        f.write(f"CUPY_VERSION = {cupy.__version__!r}\n")
        f.write("NAMESPACE = frozenset({\n" + "".join(f"    {n!r},\n" for n in sorted(names)) + "})\n")
        f.write("NDARRAY = frozenset({\n" + "".join(f"    {n!r},\n" for n in sorted(ndarray_names)) + "})\n")
        f.write(f"UFUNC_METHODS = {tuple(methods)!r}\n")
        f.write("# keyword parameters of each function and method (None: not known)\n")
        f.write("KEYWORDS = {\n" + "".join(f"    {k!r}: {v!r},\n" for k, v in keywords.items()) + "}\n")


if __name__ == "__main__":
    import os
    _generate_api_file(os.path.join(os.path.dirname(__file__), "_cupy_api.py"))
