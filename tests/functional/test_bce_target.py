"""binary_cross_entropy refuses targets outside [0, 1], as PyTorch does."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_target_outside_unit_interval_is_refused(bad):
    """A loss silently computed from a target that is not a probability fails here."""
    x = tn.tensor([0.3, 0.6])
    t = tn.tensor([0.5, bad])
    with pytest.raises(ValueError, match=r"binary_cross_entropy: .*target.*\[0, 1\]"):
        F.binary_cross_entropy(x, t)


def test_targets_at_the_bounds_are_accepted():
    """0 and 1 are valid probabilities; refusing them would break every binary classifier."""
    x = tn.tensor([0.25, 0.75], dtype=tn.float64)
    loss = F.binary_cross_entropy(x, tn.tensor([0.0, 1.0], dtype=tn.float64), reduction="none")
    assert np.allclose(loss.numpy(), [-np.log(0.75), -np.log(0.75)])
