"""BatchNorm2d: nn.BatchNorm2d's results, without saving its input when frozen."""
import torch
import torch.nn as nn

from mmft.models.layers import build_norm_layer
from mmft.models.layers.batch_norm import BatchNorm2d


def _frozen_pair(affine: bool = True):
    torch.manual_seed(0)
    ours, ref = BatchNorm2d(6, affine=affine), nn.BatchNorm2d(6, affine=affine)
    ours.running_mean.normal_()
    ours.running_var.uniform_(0.5, 2.0)
    if affine:
        ours.weight.data.normal_()
        ours.bias.data.normal_()
    ref.load_state_dict(ours.state_dict())
    for m in (ours, ref):
        m.eval().requires_grad_(False)
    return ours, ref


def _saved_bytes(fn) -> int:
    seen = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def test_frozen_layer_matches_batch_norm_and_saves_no_activation():
    for affine in (True, False):
        ours, ref = _frozen_pair(affine)
        x = torch.randn(2, 6, 20, 24, requires_grad=True)
        y = x * 1  # a non-leaf, as inside a network
        out, expected = ours(y), ref(y)
        torch.testing.assert_close(out, expected)
        grad = torch.randn_like(out)
        got_grad, = torch.autograd.grad(out, x, grad, retain_graph=True)
        ref_grad, = torch.autograd.grad(expected, x, grad)
        torch.testing.assert_close(got_grad, ref_grad)
        assert _saved_bytes(lambda: ref(y)) >= y.numel() * 4  # BN keeps its input
        assert _saved_bytes(lambda: ours(y)) < 1024  # only the per-channel scale


def test_trainable_or_training_layer_is_plain_batch_norm():
    ours, ref = _frozen_pair()
    ours.weight.requires_grad_(True)
    ref.weight.requires_grad_(True)
    x = torch.randn(2, 6, 8, 8, requires_grad=True)
    out = ours(x)
    assert out.grad_fn.name() == ref(x).grad_fn.name()
    out.sum().backward()
    assert ours.weight.grad is not None and ours.weight.grad.abs().sum() > 0
    ours.train()
    before = ours.running_mean.clone()
    ours(x)
    assert not torch.equal(before, ours.running_mean)  # statistics still update


def test_bn_configs_build_it_with_batch_norm_keys():
    name, layer = build_norm_layer(dict(type='BN', requires_grad=False), 4, postfix=1)
    assert name == 'bn1' and isinstance(layer, BatchNorm2d)
    assert not any(p.requires_grad for p in layer.parameters())
    assert list(layer.state_dict()) == list(nn.BatchNorm2d(4).state_dict())
