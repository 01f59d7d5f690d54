"""Running one computation on both CPU routes: NumPy, and the compiled kernels (Numba).

Where the ``jit`` extra is installed, some CPU kernels run compiled code instead of their
NumPy route (:func:`tinynet.backend.use_compiled`). :func:`on_both_routes` runs the same
function once on each, so a test (or a reader checking a kernel) can compare them::

    numpy_out, compiled_out = on_both_routes(lambda: F.conv2d(x, w, padding=1).numpy())
    assert_close(compiled_out, numpy_out)
"""
from .. import backend

__all__ = ["on_both_routes"]


def on_both_routes(fn):
    """``(fn() on the NumPy route, fn() on the compiled route)``; the switch is put back
    afterwards. Raises ``ValueError`` where Numba is not installed (a test skips first,
    e.g. with ``pytest.importorskip("numba")``)."""
    if not backend.compiled_available():
        raise ValueError("on_both_routes: the compiled route needs Numba (pip install 'tinynet[jit]')")
    before = backend._compiled
    try:
        backend.set_compiled(False)
        numpy_result = fn()
        backend.set_compiled(True)
        compiled_result = fn()
    finally:
        backend._compiled = before
    return numpy_result, compiled_result
