"""ConvLSTM: the cell's equations against a PyTorch ConvLSTM, gradients of first and second
order, the forecaster against the same recipe written in PyTorch, and argument errors."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet import optim
from tinynet.data import make_moving_digits
from tinynet.models import ConvLSTM, ConvLSTMCell, ConvLSTMForecaster
from tinynet.models.convlstm import conv_lstm_cell, depth_to_space, space_to_depth
from tinynet.testing import assert_close, gradcheck, gradgradcheck

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- the same model in PyTorch
def torch_cell(x, h, c, weight, bias):
    """Shi et al.'s ConvLSTM step (no peepholes), gate order i, f, g, o."""
    K = h.shape[1]
    a = torch.nn.functional.conv2d(torch.cat([x, h], 1), weight, bias, padding=weight.shape[2] // 2)
    i, f, g, o = a[:, :K].sigmoid(), a[:, K:2 * K].sigmoid(), a[:, 2 * K:3 * K].tanh(), a[:, 3 * K:].sigmoid()
    c = f * c + i * g
    return o * c.tanh(), c


class TorchForecaster(torch.nn.Module):
    def __init__(self, state, hidden, patch):
        super().__init__()
        self.p, self.hidden = patch, hidden
        self.weight = torch.nn.Parameter(torch.tensor(state["convlstm.cells.0.weight"]))
        self.bias = torch.nn.Parameter(torch.tensor(state["convlstm.cells.0.bias"]))
        self.head = torch.nn.Conv2d(hidden, patch * patch, 1, dtype=self.weight.dtype)
        self.head.load_state_dict({"weight": torch.tensor(state["head.weight"]),
                                   "bias": torch.tensor(state["head.bias"])})

    def forward(self, frames, frames_out):
        p = self.p
        down = torch.nn.functional.pixel_unshuffle if p > 1 else (lambda x, _: x)
        up = torch.nn.functional.pixel_shuffle if p > 1 else (lambda x, _: x)
        B, T, _, H, W = frames.shape
        h = c = torch.zeros(B, self.hidden, H // p, W // p, dtype=frames.dtype)
        out = []
        for t in range(T - 1):
            h, c = torch_cell(down(frames[:, t], p), h, c, self.weight, self.bias)
            out.append(up(self.head(h).sigmoid(), p))
        frame = down(frames[:, -1], p)
        for _ in range(frames_out):
            h, c = torch_cell(frame, h, c, self.weight, self.bias)
            frame = self.head(h).sigmoid()
            out.append(up(frame, p))
        return torch.stack(out, 1)


def _state(model):
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- tests
def test_cell_matches_torch_forward_and_backward():
    # Wrong here: a gate's slice or nonlinearity, the [x ; h] order, or the padding.
    rng = np.random.default_rng(0)
    x, h, c = (rng.standard_normal(s) for s in [(2, 3, 6, 5), (2, 4, 6, 5), (2, 4, 6, 5)])
    w, b = rng.standard_normal((16, 7, 3, 3)) * 0.3, rng.standard_normal(16) * 0.3
    ours = [tn.tensor(a, requires_grad=True) for a in (x, h, c, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, h, c, w, b)]
    h1, c1 = conv_lstm_cell(ours[0], (ours[1], ours[2]), ours[3], ours[4])
    th1, tc1 = torch_cell(*theirs)
    assert_close(h1, th1.detach(), rtol=1e-10, atol=1e-12)
    assert_close(c1, tc1.detach(), rtol=1e-10, atol=1e-12)
    gh, gc = rng.standard_normal(h1.shape), rng.standard_normal(c1.shape)
    ((h1 * tn.tensor(gh)).sum() + (c1 * tn.tensor(gc)).sum()).backward()
    ((th1 * torch.tensor(gh)).sum() + (tc1 * torch.tensor(gc)).sum()).backward()
    for name, a, t in zip("xhcwb", ours, theirs):
        assert_close(a.grad, t.grad, rtol=1e-9, atol=1e-11, msg=name)


def test_cell_gradcheck_and_gradgradcheck():
    rng = np.random.default_rng(1)
    args = [tn.tensor(rng.standard_normal(s) * 0.5, requires_grad=True)
            for s in [(1, 2, 3, 3), (1, 2, 3, 3), (1, 2, 3, 3), (8, 4, 3, 3), (8,)]]

    def step(x, h, c, w, b):
        return conv_lstm_cell(x, (h, c), w, b)
    assert gradcheck(step, args)
    assert gradgradcheck(step, args)


def test_space_to_depth_is_torchs_pixel_unshuffle():
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 6))
    y = space_to_depth(tn.tensor(x), 2)
    assert_close(y, torch.nn.functional.pixel_unshuffle(torch.tensor(x), 2), rtol=0, atol=0)
    assert_close(depth_to_space(y, 2), x, rtol=0, atol=0)


def test_layer_stacks_cells_over_time():
    tn.manual_seed(0)
    layer = ConvLSTM(2, [3, 4], kernel_size=3, dtype=tn.float64)
    x = np.random.default_rng(3).standard_normal((2, 4, 2, 5, 5))
    out, states = layer(tn.tensor(x))
    assert tuple(out.shape) == (2, 4, 4, 5, 5) and len(states) == 2
    ws = [(torch.tensor(c.weight.detach().numpy()), torch.tensor(c.bias.detach().numpy())) for c in layer.cells]
    hs = [(torch.zeros(2, k, 5, 5, dtype=torch.float64),) * 2 for k in (3, 4)]
    for t in range(4):
        inp = torch.tensor(x[:, t])
        for i, (w, b) in enumerate(ws):
            hs[i] = torch_cell(inp, *hs[i], w, b)
            inp = hs[i][0]
        assert_close(out[:, t], inp, rtol=1e-10, atol=1e-12)
    assert_close(states[1][1], hs[1][1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("patch", [1, 2])
def test_forecaster_matches_torch(patch):
    tn.manual_seed(4)
    model = ConvLSTMForecaster(hidden_channels=[5], frames_out=3, patch_size=patch, dtype=tn.float64)
    frames = np.random.default_rng(5).random((2, 4, 1, 8, 8))
    ref = TorchForecaster(_state(model), 5, patch)
    expect = ref(torch.tensor(frames), 3)
    got = model(tn.tensor(frames))
    assert tuple(got.shape) == (2, 6, 1, 8, 8)
    assert_close(got, expect.detach(), rtol=1e-10, atol=1e-12)
    assert_close(model.forecast(tn.tensor(frames)), expect.detach()[:, 3:], rtol=1e-10, atol=1e-12)


def test_recipe_matches_the_same_recipe_in_torch():
    # The `tinynet train convlstm` recipe, shrunk to 6 steps: both libraries start from the
    # same weights and see the same batches; the test MSE after training must agree within
    # 10% and must have dropped. (The full recipe's figures, including the margin over
    # repeating the last frame, are in docs/tutorials/convlstm-video.md.)
    tn.manual_seed(0)
    train = make_moving_digits(96, frames=20, seed=0)
    test = make_moving_digits(32, frames=20, split="test", seed=1)
    model = ConvLSTMForecaster(hidden_channels=[8], frames_out=10, patch_size=2)
    ref = TorchForecaster(_state(model), 8, 2)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    t_opt = torch.optim.Adam(ref.parameters(), lr=1e-2)

    def test_mse():
        with tn.no_grad():
            ours = model.forecast(tn.tensor(test[:, :10])).numpy()
        with torch.no_grad():
            theirs = ref(torch.tensor(test[:, :10]), 10)[:, 9:].numpy()
        return float(((ours - test[:, 10:]) ** 2).mean()), float(((theirs - test[:, 10:]) ** 2).mean())

    before, _ = test_mse()
    for i in range(0, len(train), 16):
        batch = train[i:i + 16]
        loss = F.mse_loss(model(tn.tensor(batch[:, :10])), tn.tensor(batch[:, 1:]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        t_loss = torch.nn.functional.mse_loss(ref(torch.tensor(batch[:, :10]), 10), torch.tensor(batch[:, 1:]))
        t_opt.zero_grad()
        t_loss.backward()
        t_opt.step()
    ours, theirs = test_mse()
    assert abs(ours - theirs) <= 0.1 * theirs, (ours, theirs)
    assert ours < 0.5 * before, (ours, before)


def test_bad_arguments():
    with pytest.raises(ValueError, match="ConvLSTMCell: kernel_size must be odd"):
        ConvLSTMCell(1, 4, kernel_size=2)
    with pytest.raises(ValueError, match="ConvLSTMCell: hidden_channels must be a positive int"):
        ConvLSTMCell(1, 0)
    cell = ConvLSTMCell(2, 3)
    with pytest.raises(ValueError, match=r"ConvLSTMCell: expected input of shape \(batch, 2, height, width\)"):
        cell(tn.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"conv_lstm_cell: expected weight of shape \(12, 5, k, k\)"):
        conv_lstm_cell(tn.randn(1, 2, 4, 4), (tn.zeros(1, 3, 4, 4), tn.zeros(1, 3, 4, 4)), tn.randn(12, 4, 3, 3))
    with pytest.raises(ValueError, match="differ in batch or spatial size"):
        conv_lstm_cell(tn.randn(1, 2, 4, 4), (tn.zeros(1, 3, 5, 5), tn.zeros(1, 3, 5, 5)), tn.randn(12, 5, 3, 3))
    with pytest.raises(ValueError, match="ConvLSTM: expected input of shape"):
        ConvLSTM(1, 2)(tn.randn(2, 1, 4, 4))
    with pytest.raises(ValueError, match="multiples of patch_size=2"):
        ConvLSTMForecaster(patch_size=2)(tn.rand(1, 3, 1, 5, 5))
    with pytest.raises(ValueError, match="frames_out must be a positive int"):
        ConvLSTMForecaster(frames_out=0)
