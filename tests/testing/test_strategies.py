"""tinynet.testing.strategies.pooling draws what it says: arguments max_pool2d accepts,
2x2 tiles among them, ties and signed zeros in the windows, specials only on request."""
import numpy as np
from hypothesis import given, settings

import tinynet as tn
import tinynet.functional as F
from tinynet.testing import strategies as tst


@settings(max_examples=60, deadline=None)
@given(case=tst.pooling(), special=tst.pooling(special=True))
def test_pooling_cases_are_valid_max_pool_calls(case, special):
    for (x, kw), specials_allowed in ((case, False), (special, True)):
        assert x.ndim == 4 and x.shape[0] <= 2 and x.shape[1] <= 3
        assert specials_allowed or np.isfinite(x).all()
        y = F.max_pool2d(tn.tensor(x), **kw)        # a ValueError here: an invalid case
        assert y.shape[:2] == x.shape[:2] and min(y.shape[2:]) >= 1


def test_pooling_draws_tiles_ties_and_signed_zeros():
    seen = {"tiles": False, "ties": False, "negative zero": False, "nan": False}

    @settings(max_examples=100, deadline=None, database=None)
    @given(case=tst.pooling(special=True))
    def look(case):
        x, kw = case
        seen["tiles"] |= kw["kernel_size"] == kw["stride"] == 2 and kw["padding"] == 0
        seen["ties"] |= len(np.unique(x)) < x.size
        seen["negative zero"] |= bool(np.any((x == 0) & np.signbit(x)))
        seen["nan"] |= bool(np.isnan(x).any())
    look()
    assert all(seen.values()), seen
