"""gfm.model.fuse: inference rewrites keep every output of every GFM variant."""

import platform

import pytest
import torch
from torch import nn

from gfm.model.fuse import FusedConv2d, fold_batch_norms, fuse_pointwise, keep_large_allocations_on_heap
from gfm.model.network import build_gfm, optimise_for_inference

VARIANTS = [
    ("r34", "TT", {}), ("r34", "FT", {}), ("r34", "BT", {}), ("r34", "RIM", {}), ("r34_2b", "TT", {}),
    ("d121", "TT", {}), ("r18_lite", "TT", {}), ("r34", "TT", {"decoder": "single"}),
    ("r34", "TT", {"ppm": "none"}), ("r34", "TT", {"ppm": "one"}), ("r34", "TT", {"bridge": False}),
    ("r18_lite", "RIM", {"decoder": "single"}),
]


def _with_batch_statistics(model: nn.Module) -> nn.Module:
    """Non-trivial batch-norm statistics, so that folding them actually changes the weights."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_((torch.rand(m.num_features, generator=g) - 0.5) * 0.4)
    return model.eval()


@pytest.mark.parametrize("backbone,rosta,options", VARIANTS, ids=lambda v: str(v))
def test_fused_inference_matches_the_eval_model(backbone, rosta, options, one_thread):
    torch.manual_seed(0)
    model = _with_batch_statistics(build_gfm(backbone, rosta, **options))
    x = torch.rand(1, 3, 64, 96) * 255
    with torch.no_grad():
        reference = model(x)
    run = optimise_for_inference(model, "cpu", "fp32")
    out = run(x)
    for key in ("glance", "focus"):
        torch.testing.assert_close(out[key], reference[key], rtol=0, atol=1e-4)
    if rosta == "RIM":
        for head in ("TT", "FT", "BT"):
            torch.testing.assert_close(out["rosta"][head]["focus"], reference["rosta"][head]["focus"], rtol=0, atol=1e-4)
    fused = [m for m in run.model.modules() if isinstance(m, FusedConv2d)]
    assert fused and all(isinstance(b[0], FusedConv2d) for n, b in run.model.named_children() if n.startswith("decoder"))
    assert "_join" in vars(run.model)  # concatenations are deferred into the decoders' first convolutions


def test_r101_fused_equals_folded_to_fp32_rounding(one_thread):
    # Random-weight ResNet-101 activations reach ~1e4, so compare against the folded model in
    # float64 relative to the logits' scale instead of absolute probabilities.
    torch.manual_seed(0)
    model = _with_batch_statistics(build_gfm("r101", "TT"))
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        exact = fold_batch_norms(model).double()(x.double())
    out = optimise_for_inference(model, "cpu", "fp32")(x)
    for key in ("glance_logits", "focus_logits"):
        scale = exact[key].abs().max()
        assert (out[key].double() - exact[key]).abs().max() / scale < 1e-5


def test_fused_conv_over_parts_equals_conv_over_concatenation():
    torch.manual_seed(0)
    conv = nn.Conv2d(24, 8, 3, padding=2, dilation=2).eval()
    fused = FusedConv2d(conv, relu=True)
    a, b, c = (torch.randn(2, k, 20, 28).contiguous(memory_format=torch.channels_last) for k in (8, 12, 4))
    residual = torch.randn(2, 8, 20, 28)
    with torch.inference_mode():
        expected = torch.relu(conv(torch.cat((a, b, c), 1)) + residual)
        torch.testing.assert_close(fused((a, b, c), residual=residual), expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(fused(torch.cat((a, b, c), 1), residual=residual), expected, rtol=1e-5, atol=1e-5)
        # another input size after the weights were packed for the first one
        small = torch.randn(1, 24, 9, 7)
        torch.testing.assert_close(fused(small), torch.relu(conv(small)), rtol=1e-5, atol=1e-5)
        with pytest.raises(ValueError, match="do not add up"):
            fused((a, b))


def test_fused_conv_falls_back_when_autograd_or_autocast_is_on():
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 4, 3, padding=1)
    fused = FusedConv2d(conv, relu=False)
    x = torch.randn(1, 6, 10, 10, requires_grad=True)
    y = fused(x)
    y.sum().backward()  # the reference path keeps the graph
    assert x.grad is not None
    torch.testing.assert_close(y, conv(x))
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert fused(x.detach()).dtype == torch.bfloat16


def test_fuse_pointwise_leaves_unfolded_batch_norms_alone():
    block = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
    fuse_pointwise(block)
    assert type(block[0]) is nn.Conv2d and isinstance(block[2], nn.ReLU)
    fuse_pointwise(folded := fold_batch_norms(block))
    assert isinstance(folded[0], FusedConv2d) and folded[0].relu and isinstance(folded[2], nn.Identity)


def test_keep_large_allocations_on_heap_is_idempotent():
    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert keep_large_allocations_on_heap() is expected
    assert keep_large_allocations_on_heap() is expected


def test_without_onednn_fused_ops_the_same_model_runs_on_plain_convolutions(monkeypatch, one_thread):
    import gfm.model.fuse

    monkeypatch.setattr(gfm.model.fuse, "_has_fused_ops", lambda: False)
    torch.manual_seed(0)
    model = _with_batch_statistics(build_gfm("r18_lite", "TT"))
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        reference = model(x)
    out = optimise_for_inference(model, "cpu", "fp32")(x)
    for key in ("glance", "focus"):
        torch.testing.assert_close(out[key], reference[key], rtol=0, atol=1e-4)
