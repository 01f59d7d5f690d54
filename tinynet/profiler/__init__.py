"""Where the time goes: per-op timing through the engine's optional callback.

    >>> import tinynet as tn, tinynet.functional as F
    >>> from tinynet import profiler
    >>> x = tn.randn(8, 3, 16, 16)
    >>> w = tn.randn(4, 3, 3, 3, requires_grad=True)
    >>> with profiler.profile() as prof:
    ...     with profiler.record_function("step"):
    ...         F.relu(F.conv2d(x, w, padding=1)).sum().backward()
    >>> {"Conv2d", "Conv2dWeight", "ReLU", "step"} <= {r["name"] for r in prof.rows()}
    True
    >>> prof.row("Conv2d")["calls"], prof.row("Conv2d")["backward_calls"]
    (1, 1)

Protocol (see :mod:`tinynet.profiler.recorder`): while a ``profile()`` block runs, the
engine hands every ``Function.apply``, every node's ``backward`` and every backward walk
to a recorder, which times it with ``time.perf_counter_ns`` and keeps the nesting, so each
call has a total time and a self time (total minus what it called). Outside a profile the
engine's hook is None and costs one ``is not None`` test per op: the profiler is a
package above the engine, which never imports it.

What you get:

* :meth:`profile.table` -- a table per op type: forward and backward calls, total and
  self time, share of the wall time, GFLOP/s where a flop count is defined
  (:mod:`tinynet.profiler.flops`), and megabytes of the arrays returned;
* :meth:`profile.rows` -- the same figures as dicts (times in nanoseconds);
* :meth:`profile.export_chrome_trace` -- a JSON trace that opens in https://ui.perfetto.dev
  or chrome://tracing, one bar per call, nested as the calls were;
* :func:`record_function` -- name a region of your own (the optimizer step, data loading);
  ops inside it nest under it in the trace.

Limits: one profile at a time, in the thread that opened it (ops that other threads run
meanwhile are recorded too, but their nesting is not tracked). Work that is not a
``Function`` (optimizer updates, data loading) is only visible inside a
:func:`record_function` region, else it counts as "untracked". Each recorded op costs
~2-4 µs of bookkeeping, measured and reported as "profiler overhead".
"""
from __future__ import annotations

from .. import backend
from . import report
from .recorder import Recorder, active_recorder

__all__ = ["profile", "record_function"]


class profile:
    """Context manager that records every op run inside it.

    Parameters
    ----------
    synchronize : bool, optional
        Wait for the GPU before each clock read, so GPU ops are timed by their kernels,
        not their launches. Default: True when CuPy is loaded, else False.
    record_shapes : bool
        Keep each call's input shapes (shown in the Chrome trace). Default True.
    """

    def __init__(self, synchronize: bool | None = None, record_shapes: bool = True):
        if synchronize is None:
            synchronize = backend._cupy is not None
        self._recorder = Recorder(synchronize=synchronize, record_shapes=record_shapes)
        self._done = False

    def __enter__(self) -> "profile":
        if self._done:
            raise RuntimeError("profile: this profile has already run; create a new one")
        self._recorder.install()
        return self

    def __exit__(self, *exc) -> None:
        self._recorder.uninstall()
        self._done = True

    # ----------------------------------------------------------------- results
    def _finished(self, what: str):
        if not self._done:
            raise RuntimeError(f"profile.{what}: read the results after the `with` block ends")
        return self._recorder

    @property
    def events(self):
        """Every recorded :class:`~tinynet.profiler.recorder.Event`, in the order they ended."""
        return list(self._finished("events").events)

    @property
    def wall_ns(self) -> int:
        """Wall time of the ``with`` block in nanoseconds."""
        rec = self._finished("wall_ns")
        return rec.end - rec.start

    def rows(self) -> list[dict]:
        """One dict per op type (and region), sorted by self time; times in ns.

        Keys: name, kind ("op", "region" or "engine"), calls, total_ns, self_ns,
        backward_calls, backward_total_ns, backward_self_ns, all_self_ns, flops,
        gflops (None where no flop count is defined), nbytes.
        """
        return report.aggregate(self._finished("rows").events)

    def row(self, name: str) -> dict:
        """The row of one op type by its Function name (e.g. ``"Conv2d"``); KeyError if absent."""
        for r in self.rows():
            if r["name"] == name:
                return r
        raise KeyError(f"profile.row: no op or region named {name!r} was recorded")

    def phases(self) -> dict:
        """Wall time split (ns): forward ops, backward ops, autograd engine, regions,
        untracked, profiler overhead."""
        rec = self._finished("phases")
        return report.phase_totals(rec.events, rec.end - rec.start, rec.overhead_ns)

    def table(self, steps: int = 1, row_limit: int | None = None) -> str:
        """The per-op table as text; with ``steps`` > 1 every figure is divided by it
        (per-step times when the block ran that many training steps)."""
        if int(steps) < 1:
            raise ValueError(f"profile.table: steps must be a positive int, got {steps!r}")
        return report.format_table(self.rows(), self.phases(), int(steps), row_limit)

    def export_chrome_trace(self, path: str) -> None:
        """Writes the calls as a Chrome/Perfetto trace (JSON) to ``path``."""
        rec = self._finished("export_chrome_trace")
        report.write_json(report.chrome_trace(rec.events, rec.start), path)

    def __str__(self) -> str:
        return self.table() if self._done else "<profile (running)>"


class record_function:
    """Names a region inside a running profile (a "region" row and a bar in the trace);
    does nothing when no profile runs. Usable as a ``with`` block or a decorator."""

    def __init__(self, name: str):
        if not isinstance(name, str) or not name:
            raise TypeError(f"record_function: name must be a non-empty string, got {name!r}")
        self.name = name
        self._regions = []

    def __enter__(self):
        rec = active_recorder()
        region = rec.region(self.name) if rec is not None else None
        if region is not None:
            region.__enter__()
        self._regions.append(region)
        return self

    def __exit__(self, *exc):
        region = self._regions.pop()
        if region is not None:
            region.__exit__(*exc)

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with record_function(self.name):
                return fn(*args, **kwargs)
        return wrapped
