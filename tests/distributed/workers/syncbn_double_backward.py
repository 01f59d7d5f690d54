"""SyncBatchNorm's first and second derivatives on W ranks equal BatchNorm's on the whole
batch in one process: g = d(Σ_r L_r)/dx and d(Σ_r |g_r|²)/dx, slice by slice (float64)."""
import numpy as np

import tinynet as tn
from tinynet import autograd, nn
from common import start, close, done

rank, world = start()
B = 3
rng = np.random.default_rng(11)
x_all = rng.standard_normal((world * B, 4, 3, 3)) * 2 + 1.5
c_all = rng.standard_normal((world * B, 4, 3, 3))
mine = slice(rank * B, (rank + 1) * B)


def derivatives(layer, x, c):
    x = tn.tensor(x, requires_grad=True)
    loss = (layer(x) * tn.tensor(c)).sum()
    (g,) = autograd.grad(loss, x, create_graph=True)
    (gg,) = autograd.grad((g * g).sum(), x)
    return g.detach().numpy(), gg.numpy()


tn.manual_seed(0)
sync = nn.SyncBatchNorm(4).double()
sync.weight.data[...] = np.linspace(0.5, 2.0, 4)
reference = nn.BatchNorm2d(4).double()
reference.load_state_dict(sync.state_dict())
g, gg = derivatives(sync, x_all[mine], c_all[mine])
g_ref, gg_ref = derivatives(reference, x_all, c_all)
close(g, g_ref[mine], "SyncBatchNorm first derivative")
close(gg, gg_ref[mine], "SyncBatchNorm second derivative")
close(sync.running_var.numpy(), reference.running_var.numpy(), "running_var (two forwards each)")
done("syncbn double backward")
