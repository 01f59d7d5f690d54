"""Generated text tasks and a character vocabulary (no download).

* :class:`CharVocab` — characters <-> integer ids, with ``<pad>`` (0), ``<sos>`` (1) and
  ``<eos>`` (2) in front; pads a batch of strings into one ``(N, L)`` int64 array.
* :func:`make_dates` — a date written in one of many human formats ("the 3rd of March
  1987", "03/03/87", "Tuesday, March 3 1987", ...) paired with its ISO form
  "1987-03-03": the translation task of :class:`tinynet.models.Seq2Seq`.
* :func:`make_additions` — lines of two-digit additions "37+48=85", the corpus of
  :class:`tinynet.models.CharLM`.

Held-out data is *unseen*, not just re-drawn: the days of 1950..2049 and the 8,100 pairs
``(a, b)`` of two-digit numbers are each split once, by a fixed permutation that does not
depend on ``seed``, into a training part and a test part (``split="train"`` / ``"test"``).
``seed`` only chooses which of a part's items are drawn and how they are written.
Conventions: numeric dates are day first (``03/04/87`` is the 3rd of April) and a
two-digit year ``yy`` means 19yy for yy >= 50, else 20yy.
"""
from __future__ import annotations

import datetime

from ..backend import asnumpy, numpy as np

__all__ = ["CharVocab", "make_dates", "make_additions", "DATE_FORMATS", "DATE_SOURCE_VOCAB",
           "DATE_TARGET_VOCAB", "ADDITION_VOCAB"]

_SPLIT_SEED = 20150612          # fixes which days / pairs are held out, for every seed
_TEST_FRACTION = 0.1


class CharVocab:
    """A character vocabulary: ids 0, 1, 2 are ``<pad>``, ``<sos>``, ``<eos>``; characters follow.

    >>> v = CharVocab("ab")
    >>> ids, lengths = v.encode(["ab", "b"], eos=True)
    >>> ids.tolist(), lengths.tolist(), v.decode(ids[0])
    ([[3, 4, 2], [4, 2, 0]], [3, 2], 'ab')
    """

    PAD, SOS, EOS = 0, 1, 2
    SPECIALS = ("<pad>", "<sos>", "<eos>")

    def __init__(self, chars: str):
        chars = "".join(sorted(set(chars), key=chars.index))
        self.chars = chars
        self.index = {c: i + len(self.SPECIALS) for i, c in enumerate(chars)}

    def __len__(self) -> int:
        return len(self.SPECIALS) + len(self.chars)

    def __repr__(self) -> str:
        return f"CharVocab({self.chars!r})"

    def encode(self, texts, length: int | None = None, sos: bool = False, eos: bool = False):
        """``(ids (N, L) int64, lengths (N,) int64)`` of ``texts``, padded with ``<pad>`` to ``L``.

        ``L`` is the longest text (with the optional ``<sos>`` / ``<eos>``) unless ``length``
        is given; a character outside the vocabulary is a ``ValueError``.
        """
        if isinstance(texts, str):
            raise TypeError("CharVocab.encode: expected a list of strings, got one str")
        rows = []
        for text in texts:
            try:
                row = [self.index[c] for c in text]
            except KeyError as e:
                raise ValueError(f"CharVocab.encode: character {e.args[0]!r} of {text!r} is not in "
                                 f"the vocabulary {self.chars!r}") from None
            rows.append(([self.SOS] if sos else []) + row + ([self.EOS] if eos else []))
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        width = int(lengths.max(initial=0)) if length is None else int(length)
        if len(rows) and width < lengths.max():
            raise ValueError(f"CharVocab.encode: length={length} is shorter than the longest text "
                             f"({int(lengths.max())} ids)")
        ids = np.full((len(rows), width), self.PAD, dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = r
        return ids, lengths

    def decode(self, ids) -> str:
        """The characters of ``ids`` up to the first ``<eos>`` (``<pad>`` and ``<sos>`` skipped)."""
        out = []
        for i in asnumpy(ids).reshape(-1).tolist():
            if i == self.EOS:
                break
            if i >= len(self.SPECIALS):
                out.append(self.chars[i - len(self.SPECIALS)])
        return "".join(out)


# ---------------------------------------------------------------------------- dates
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_FIRST_DAY = datetime.date(1950, 1, 1)
_N_DAYS = (datetime.date(2049, 12, 31) - _FIRST_DAY).days + 1


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _date_parts(d: datetime.date) -> dict:
    return {"d": d.day, "dd": f"{d.day:02d}", "m": d.month, "mm": f"{d.month:02d}",
            "yyyy": d.year, "yy": f"{d.year % 100:02d}", "month": _MONTHS[d.month - 1],
            "mon": _MONTHS[d.month - 1][:3], "weekday": _DAYS[d.weekday()],
            "wkd": _DAYS[d.weekday()][:3], "nth": _ordinal(d.day)}


#: The human formats of :func:`make_dates` (``str.format`` fields of one date).
DATE_FORMATS = (
    "the {nth} of {month} {yyyy}",
    "{dd}/{mm}/{yy}",
    "{weekday}, {month} {d} {yyyy}",
    "{month} {d}, {yyyy}",
    "{d} {month} {yyyy}",
    "{d} {mon} {yyyy}",
    "{mon} {d}, {yy}",
    "{d}.{m}.{yyyy}",
    "{dd}-{mm}-{yyyy}",
    "{wkd} {d} {mon} {yy}",
    "{month} {nth}, {yyyy}",
    "{nth} {month} {yyyy}",
    "{d}/{m}/{yyyy}",
    "{weekday} the {nth} of {month}, {yyyy}",
    "{yyyy}/{mm}/{dd}",
    "{mon}. {d} {yyyy}",
)

DATE_SOURCE_VOCAB = CharVocab(" ,./-0123456789" + "".join(sorted(set("".join(_MONTHS + _DAYS)
                                                                        + "theof"))))
DATE_TARGET_VOCAB = CharVocab("0123456789-")


def _held_out(n_items: int, split: str, op: str):
    if split not in ("train", "test"):
        raise ValueError(f"{op}: split must be 'train' or 'test', got {split!r}")
    perm = np.random.Generator(np.random.PCG64(_SPLIT_SEED)).permutation(n_items)
    n_test = int(round(n_items * _TEST_FRACTION))
    return np.sort(perm[:n_test] if split == "test" else perm[n_test:])


def make_dates(n: int, split: str = "train", seed: int = 0, formats=DATE_FORMATS):
    """``n`` dates in random human formats and their ISO forms: ``(sources, targets)`` lists of str.

    Days are drawn from 1950-01-01 .. 2049-12-31; one day in ten is reserved for
    ``split="test"``, so test dates never appear in training.

    >>> src, tgt = make_dates(2, seed=1)
    >>> len(src), [len(t) for t in tgt]
    (2, [10, 10])
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"make_dates: n must be a positive int, got {n!r}")
    if not formats:
        raise ValueError("make_dates: formats must name at least one format")
    days = _held_out(_N_DAYS, split, "make_dates")
    rng = np.random.Generator(np.random.PCG64(seed))
    picked = rng.choice(days, size=n, replace=n > len(days))
    styles = rng.integers(0, len(formats), size=n)
    sources, targets = [], []
    for day, style in zip(picked.tolist(), styles.tolist()):
        d = _FIRST_DAY + datetime.timedelta(days=day)
        sources.append(formats[style].format(**_date_parts(d)))
        targets.append(d.isoformat())
    return sources, targets


# ---------------------------------------------------------------------------- additions
ADDITION_VOCAB = CharVocab("0123456789+=\n")


def make_additions(n: int | None = None, split: str = "train", seed: int = 0):
    """Lines ``"a+b=c"`` with two-digit ``a`` and ``b`` (10..99), as a list of str.

    The 8,100 pairs are split once: 810 are reserved for ``split="test"``. ``n=None``
    gives every pair of the split once (shuffled by ``seed``); otherwise ``n`` lines are
    drawn with replacement.

    >>> make_additions(3, seed=0)[0].count("+"), len(make_additions(split="test"))
    (1, 810)
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"make_additions: n must be a positive int or None, got {n!r}")
    pairs = _held_out(90 * 90, split, "make_additions")
    rng = np.random.Generator(np.random.PCG64(seed))
    chosen = rng.permutation(pairs) if n is None else rng.choice(pairs, size=n, replace=True)
    a, b = chosen // 90 + 10, chosen % 90 + 10
    return [f"{x}+{y}={x + y}" for x, y in zip(a.tolist(), b.tolist())]
