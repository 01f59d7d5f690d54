"""Generated text and video tasks: dates, additions, the character vocabulary, moving digits."""
import datetime

import numpy as np
import pytest

import tinynet
from tinynet.data import CharVocab, make_additions, make_dates, make_moving_digits
from tinynet.data.text import DATE_FORMATS, DATE_SOURCE_VOCAB, DATE_TARGET_VOCAB

# Formats that the standard library can read back: an independent check of each source
# against its ISO target (and of the weekday, which must be the date's own).
_STRPTIME = {"{dd}/{mm}/{yy}": "%d/%m/%y", "{weekday}, {month} {d} {yyyy}": "%A, %B %d %Y",
             "{month} {d}, {yyyy}": "%B %d, %Y", "{d} {mon} {yyyy}": "%d %b %Y",
             "{dd}-{mm}-{yyyy}": "%d-%m-%Y", "{yyyy}/{mm}/{dd}": "%Y/%m/%d",
             "{wkd} {d} {mon} {yy}": "%a %d %b %y"}


@pytest.mark.parametrize("fmt", sorted(_STRPTIME))
def test_date_sources_read_back_to_their_targets(fmt):
    sources, targets = make_dates(200, seed=3, formats=(fmt,))
    for s, t in zip(sources, targets):
        parsed = datetime.datetime.strptime(s, _STRPTIME[fmt]).date()
        if fmt.endswith("{yy}"):                  # strptime's own 2-digit pivot is 1969
            y = parsed.year % 100
            parsed = parsed.replace(year=1900 + y if y >= 50 else 2000 + y)
        assert parsed.isoformat() == t, (s, t)


def test_dates_use_many_formats_and_hold_out_unseen_days():
    sources, targets = make_dates(4000, seed=0)
    assert all(len(t) == 10 and t[4] == t[7] == "-" for t in targets)
    assert any(s.startswith("the ") and " of " in s for s in sources)
    assert any("day," in s for s in sources)
    _, test_targets = make_dates(2000, split="test", seed=0)
    assert not set(targets) & set(test_targets), "a test date also appears in training"
    assert make_dates(5, seed=1) == make_dates(5, seed=1)
    assert make_dates(5, seed=1) != make_dates(5, seed=2)
    ids, lengths = DATE_SOURCE_VOCAB.encode(sources)
    assert [DATE_SOURCE_VOCAB.decode(r) for r in ids[:50]] == sources[:50]
    assert (lengths == [len(s) for s in sources]).all()
    assert len(DATE_FORMATS) >= 10


def test_ordinals():
    sources, targets = make_dates(3000, seed=5, formats=("{nth}",))
    for s, t in zip(sources, targets):
        day = int(t[-2:])
        assert s == f"{day}" + {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}.get(day, "th")


def test_additions_are_correct_and_split():
    train, test = make_additions(), make_additions(split="test")
    assert len(train) == 7290 and len(test) == 810
    assert not set(train) & set(test)
    for line in train[:500] + test:
        a, rest = line.split("+")
        b, c = rest.split("=")
        assert 10 <= int(a) <= 99 and 10 <= int(b) <= 99 and int(a) + int(b) == int(c)
    assert len(make_additions(20, seed=1)) == 20
    with pytest.raises(ValueError, match="make_additions: split must be"):
        make_additions(split="val")


def test_vocab_encode_decode_and_errors():
    v = CharVocab("0123456789+=")
    ids, lengths = v.encode(["1+2=3", "12"], sos=True, eos=True)
    assert ids.dtype == np.int64 and ids.shape == (2, 7)
    assert ids[0, 0] == v.SOS and ids[0, 6] == v.EOS and ids[1, 4] == v.PAD
    assert lengths.tolist() == [7, 4]
    assert v.decode(ids[0]) == "1+2=3" and v.decode(ids[1]) == "12"
    # a model's decoded ids are arrays on its device (a CuPy array on a GPU run)
    assert v.decode(tinynet.tensor(ids[0]).data) == "1+2=3"
    assert len(v) == 15
    with pytest.raises(ValueError, match="character 'x'"):
        v.encode(["1x"])
    with pytest.raises(ValueError, match="shorter than the longest"):
        v.encode(["12345"], length=3)
    with pytest.raises(TypeError, match="list of strings"):
        v.encode("12")
    assert DATE_TARGET_VOCAB.decode(DATE_TARGET_VOCAB.encode(["1987-03-03"])[0][0]) == "1987-03-03"


def test_moving_digits_stay_inside_and_move():
    video = make_moving_digits(6, frames=20, size=32, digits=1, seed=0)
    assert video.shape == (6, 20, 1, 32, 32) and video.dtype == np.float32
    assert 0.0 <= video.min() and video.max() <= 1.0
    mass = video.sum(axis=(2, 3, 4))
    # one digit, never clipped by the border: every frame holds the whole digit
    assert np.allclose(mass, mass[:, :1], rtol=1e-5)
    for seq in video[:, :, 0]:
        ys, xs = [], []
        for frame in seq:
            rows, cols = np.nonzero(frame)
            ys.append(rows.min()), xs.append(cols.min())
        steps = np.abs(np.diff(ys)) + np.abs(np.diff(xs))
        assert steps.max() <= 4 and steps.min() >= 0
        assert len(set(zip(ys, xs))) > 5, "the digit does not move"
    two = make_moving_digits(4, digits=2, seed=1)
    assert (two.sum(axis=(2, 3, 4)) > mass.min() * 0.5).all()
    assert not np.array_equal(make_moving_digits(2, split="test"), make_moving_digits(2))
    with pytest.raises(ValueError, match="make_moving_digits: size must be an int >= 8"):
        make_moving_digits(2, size=4)
