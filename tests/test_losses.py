"""Losses of GFM (Eq. 2-8): hand-computed terms, RoSTa targets, paper vs official differences.

The ``OFFICIAL_*`` numbers were recorded by running the released ``core/evaluate.py`` loss
functions and the loss assembly of ``core/train.py`` (on the CPU, ``.cuda()`` made a no-op) on
the inputs :func:`_inputs` builds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from gfm.train import losses
from gfm.model.network import collaborative_matting
from gfm.core.trimap import dilation_mask, erosion_mask, trimap

OFFICIAL_TOTALS = {"TT": 0.9757784, "FT": 0.9717931, "BT": 0.6863053, "RIM": 13.3897877}
OFFICIAL_TT_TERMS = {"glance": 1.1359099, "focus": 0.7576216, "fusion_alpha_lap": 1.5068990, "fusion_comp": 0.5026829}


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------

def _inputs(h=64, w=64, n=2):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    alphas = []
    for k in range(n):
        d = np.hypot(yy - h / 2 - 3 * k, xx - w / 2) - 18 + 4 * k
        alphas.append(np.clip(0.5 - d / 6, 0, 1))
    alpha = np.round(np.stack(alphas) * 255).astype(np.uint8)
    fg = rng.integers(0, 256, (n, h, w, 3)).astype(np.uint8)
    bg = rng.integers(0, 256, (n, h, w, 3)).astype(np.uint8)
    a = alpha[..., None] / 255.0
    image = np.round(a * fg + (1 - a) * bg).astype(np.uint8)
    logits = {c: rng.normal(0, 2, (n, c, h, w)).astype(np.float32) for c in (2, 3)}
    focus_logits = rng.normal(0, 2, (n, 1, h, w)).astype(np.float32)
    return alpha, fg, bg, image, logits, focus_logits


def _batch(alpha, fg, bg, image, trimap_kernel=9, ftbt_kernel=15):
    tri = np.stack([trimap(a, trimap_kernel) for a in alpha])
    ero = np.stack([erosion_mask(a, ftbt_kernel) for a in alpha])
    dil = np.stack([dilation_mask(a, ftbt_kernel) for a in alpha])
    chw = lambda x: torch.from_numpy(np.ascontiguousarray(x)).float().permute(0, 3, 1, 2)  # noqa: E731
    classes = np.where(tri == 255, 2, np.where(tri == 128, 1, 0))
    return {"image": chw(image), "fg": chw(fg), "bg": chw(bg),
            "alpha": torch.from_numpy(alpha).float()[:, None] / 255,
            "trimap": torch.from_numpy(classes).long(),
            "erosion": torch.from_numpy(ero).float()[:, None] / 255,
            "dilation": torch.from_numpy(dil).float()[:, None] / 255}


def _outputs(rosta, glance_logits, focus_logits):
    g, f = torch.sigmoid(glance_logits), torch.sigmoid(focus_logits)
    return {"glance": g, "glance_logits": glance_logits, "focus": f, "focus_logits": focus_logits,
            "fusion": collaborative_matting(rosta, g, f)}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():
    alpha, fg, bg, image, logits, focus_logits = _inputs()
    return _batch(alpha, fg, bg, image), logits, focus_logits


def _perfect_outputs(batch, rosta, margin=30.0):
    target = losses.glance_target(batch, rosta)
    classes = 3 if rosta == "TT" else 2
    logits = (torch.nn.functional.one_hot(target, classes).permute(0, 3, 1, 2).float() * 2 - 1) * margin
    focus = losses.focus_target(batch, rosta)
    g = torch.sigmoid(logits)
    return {"glance": g, "glance_logits": logits, "focus": focus, "focus_logits": torch.logit(focus, 1e-6),
            "fusion": collaborative_matting(rosta, g, focus)}


# --------------------------------------------------------------------------------------------
# single terms, by hand
# --------------------------------------------------------------------------------------------

def test_glance_loss_is_softmax_cross_entropy_by_hand():
    logits = torch.tensor([[[[2.0]], [[0.0]], [[-1.0]]], [[[0.5]], [[0.5]], [[3.0]]]])  # N=2, C=3, 1x1
    target = torch.tensor([[[0]], [[2]]])
    by_hand = [-(2.0 - math.log(math.exp(2) + 1 + math.exp(-1))),
               -(3.0 - math.log(2 * math.exp(0.5) + math.exp(3)))]
    assert losses.glance_loss(logits, target).item() == pytest.approx(np.mean(by_hand), rel=1e-6)


def test_official_cross_entropy_reads_the_sigmoid_outputs(data):
    batch, logits, focus_logits = data
    out = _outputs("TT", torch.from_numpy(logits[3]), torch.from_numpy(focus_logits))
    paper = losses.rosta_loss(out, batch, "TT")["glance"]
    official = losses.rosta_loss(out, batch, "TT", official={"ce_on_sigmoid"})["glance"]
    target = batch["trimap"]
    expected = torch.nn.functional.cross_entropy(torch.sigmoid(out["glance_logits"]), target)
    assert official.item() == pytest.approx(expected.item(), rel=1e-6)
    assert paper.item() == pytest.approx(torch.nn.functional.cross_entropy(out["glance_logits"], target).item(), rel=1e-6)
    assert official.item() != pytest.approx(paper.item(), rel=1e-2)


def test_alpha_loss_by_hand():
    pred = torch.tensor([[[[0.2, 0.9], [0.5, 1.0]]]])
    alpha = torch.tensor([[[[0.0, 1.0], [0.5, 0.0]]]])
    weight = torch.tensor([[[[1.0, 1.0], [1.0, 0.0]]]])
    eps = 1e-6
    numerator = sum(math.sqrt(d * d + eps * eps) for d in (0.2, -0.1, 0.0, 0.0))
    assert losses.alpha_loss(pred, alpha, weight).item() == pytest.approx(numerator / 3, rel=1e-6)
    assert losses.alpha_loss(pred, alpha, weight, plus_one=True).item() == pytest.approx(numerator / 4, rel=1e-6)
    whole = sum(math.sqrt(d * d + eps * eps) for d in (0.2, -0.1, 0.0, 1.0)) / 4
    assert losses.alpha_loss(pred, alpha).item() == pytest.approx(whole, rel=1e-6)


def test_alpha_loss_of_a_perfect_prediction_is_epsilon_only():
    alpha = torch.rand(2, 1, 16, 16)
    assert losses.alpha_loss(alpha, alpha).item() == pytest.approx(1e-6, rel=1e-3)


def test_laplacian_pyramid_matches_an_independent_convolution():
    rng = np.random.default_rng(3)
    x = rng.random((16, 16)).astype(np.float32)
    g = np.exp(-(np.arange(5) - 2.0) ** 2 / 2)
    kernel = np.outer(g, g) / np.outer(g, g).sum()
    blurred = ndimage.convolve(x.astype(np.float64), kernel, mode="nearest")
    pyramid = losses.laplacian_pyramid(torch.from_numpy(x)[None, None], levels=1)
    np.testing.assert_allclose(pyramid[0][0, 0].numpy(), x - blurred, atol=1e-5)
    pooled = blurred.reshape(8, 2, 8, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(pyramid[1][0, 0].numpy(), pooled, atol=1e-5)


def test_official_gist_kernel_is_a_sum_not_a_product():
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 4] = 1.0
    band = losses.laplacian_pyramid(x, levels=1, gist_kernel=True)[0][0, 0].numpy()
    g = np.exp(-(np.arange(5) - 2.0) ** 2)           # exp(-d^2 / sigma^2), sigma = 1
    kernel = (g[None, :] + g[:, None]) / (g[None, :] + g[:, None]).sum()
    expected = -kernel                                # x - blur(x) around the impulse ...
    expected[2, 2] += 1.0                             # ... plus the impulse itself
    np.testing.assert_allclose(band[2:7, 2:7], expected, atol=1e-6)


def test_laplacian_loss_residual_level_carries_a_constant_offset():
    alpha = torch.full((1, 1, 64, 64), 0.25)
    pred = torch.full((1, 1, 64, 64), 0.75)
    assert losses.laplacian_loss(pred, alpha).item() == pytest.approx(0.0, abs=1e-6)  # band-pass only
    assert losses.laplacian_loss(pred, alpha, residual=True).item() == pytest.approx(0.5, rel=1e-5)
    assert losses.laplacian_loss(alpha, alpha, residual=True).item() == 0.0


def test_composition_loss_by_hand():
    fg = torch.tensor([255.0, 0.0, 51.0]).view(1, 3, 1, 1)
    bg = torch.tensor([0.0, 255.0, 102.0]).view(1, 3, 1, 1)
    alpha = torch.tensor(0.4).view(1, 1, 1, 1)
    pred = torch.tensor(0.6).view(1, 1, 1, 1)
    reference = alpha * fg + (1 - alpha) * bg
    # C(pred) - C(alpha) = 0.2 (F - B) per channel
    by_hand = sum(math.sqrt((0.2 * d / 255) ** 2 + 1e-12) for d in (255, -255, -51))
    assert losses.composition_loss(pred, fg, bg, reference).item() == pytest.approx(by_hand, rel=1e-6)
    assert losses.composition_loss(alpha, fg, bg, reference).item() == pytest.approx(3e-6, rel=1e-3)


def test_composition_against_the_image_differs_for_alpha_blended_fg_bg():
    # ORI-Track without F/B: F = alpha I, B = (1 - alpha) I; then C(alpha) != I and only the
    # paper's reference C(alpha) makes the true alpha a zero-loss prediction.
    image = torch.tensor([200.0, 100.0, 50.0]).view(1, 3, 1, 1).expand(1, 3, 32, 32)
    alpha = torch.full((1, 1, 32, 32), 0.5)
    fg, bg = alpha * image, (1 - alpha) * image
    batch = {"image": image, "alpha": alpha, "fg": fg, "bg": bg}
    paper = losses.collaborative_matting_loss(alpha, batch)["comp"]
    official = losses.collaborative_matting_loss(alpha, batch, official={"composite_vs_image"})["comp"]
    assert paper.item() == pytest.approx(3e-6, rel=1e-3)
    # C(0.5) = 0.5 I: |I - 0.5 I| / 255 summed over channels
    assert official.item() == pytest.approx(sum(0.5 * v / 255 for v in (200, 100, 50)), rel=1e-5)


# --------------------------------------------------------------------------------------------
# RoSTa targets
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rosta", ["TT", "FT", "BT"])
def test_perfect_glance_and_focus_give_alpha_through_collaborative_matting(data, rosta):
    batch = data[0]
    out = _perfect_outputs(batch, rosta)
    torch.testing.assert_close(out["fusion"], batch["alpha"], atol=1e-6, rtol=0)
    # the focus target differs from alpha only outside the transition area (FT/BT)
    weight = losses.transition_mask(batch, rosta)
    inside = weight.bool()
    expected = batch["alpha"] if rosta != "BT" else 1 - batch["alpha"]
    torch.testing.assert_close(losses.focus_target(batch, rosta)[inside], expected[inside])


def test_transition_areas_follow_the_paper(data):
    batch = data[0]
    alpha = batch["alpha"]
    tt = losses.transition_mask(batch, "TT").bool()
    ft = losses.transition_mask(batch, "FT").bool()
    bt = losses.transition_mask(batch, "BT").bool()
    assert torch.equal(tt[:, 0], batch["trimap"] == 1)
    assert torch.equal(ft, (alpha > 0) & (batch["erosion"] == 0))          # 1(alpha > 0) - F
    assert torch.equal(bt, (batch["dilation"] == 1) & (alpha < 1))         # B - 1(alpha = 1)
    semi = (alpha > 0) & (alpha < 1)
    assert bool(ft[semi].all()) and bool(bt[semi].all()) and bool(tt[semi].all())
    # official: the TT trimap's transition for every RoSTa
    for rosta in ("FT", "BT"):
        assert torch.equal(losses.transition_mask(batch, rosta, official=True).bool(), tt)


def test_official_single_rosta_glance_targets_are_swapped(data):
    batch = data[0]
    assert torch.equal(losses.glance_target(batch, "FT", official=True), batch["dilation"][:, 0].long())
    assert torch.equal(losses.glance_target(batch, "BT", official=True), (batch["alpha"][:, 0] == 1).long())
    assert torch.equal(losses.glance_target(batch, "FT"), batch["erosion"][:, 0].long())
    assert torch.equal(losses.glance_target(batch, "BT"), batch["dilation"][:, 0].long())


# --------------------------------------------------------------------------------------------
# the total (Eq. 8), paper vs official
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rosta", ["TT", "FT", "BT"])
def test_perfect_predictions_give_almost_zero_loss(data, rosta):
    batch = data[0]
    total, terms = losses.gfm_loss(_perfect_outputs(batch, rosta), batch, rosta)
    assert set(terms) == set(losses.LOSS_TERMS)
    assert total.item() < 1e-3
    assert all(v.item() < 1e-3 for v in terms.values())


@pytest.mark.parametrize("rosta", ["TT", "FT", "BT"])
def test_official_total_reproduces_the_released_code(data, rosta):
    batch, logits, focus_logits = data
    out = _outputs(rosta, torch.from_numpy(logits[3 if rosta == "TT" else 2]), torch.from_numpy(focus_logits))
    total, terms = losses.gfm_loss(out, batch, rosta, official=True)
    assert total.item() == pytest.approx(OFFICIAL_TOTALS[rosta], rel=1e-5)
    if rosta == "TT":
        assert terms["glance"].item() == pytest.approx(OFFICIAL_TT_TERMS["glance"], rel=1e-5)
        assert (terms["focus_alpha"] + terms["focus_lap"]).item() == pytest.approx(OFFICIAL_TT_TERMS["focus"], rel=1e-5)
        assert (terms["fusion_alpha"] + terms["fusion_lap"]).item() == pytest.approx(
            OFFICIAL_TT_TERMS["fusion_alpha_lap"], rel=1e-5)
        assert terms["fusion_comp"].item() == pytest.approx(OFFICIAL_TT_TERMS["fusion_comp"], rel=1e-5)


@pytest.mark.parametrize("rosta", ["TT", "FT", "BT"])
def test_quarter_weighting_is_a_quarter_of_eq_8(data, rosta):
    batch, logits, focus_logits = data
    out = _outputs(rosta, torch.from_numpy(logits[3 if rosta == "TT" else 2]), torch.from_numpy(focus_logits))
    paper, paper_terms = losses.gfm_loss(out, batch, rosta)
    quarter, quarter_terms = losses.gfm_loss(out, batch, rosta, official="quarter_weights")
    assert quarter.item() == pytest.approx(0.25 * paper.item(), rel=1e-6)
    assert paper.item() == pytest.approx(sum(v.item() for k, v in paper_terms.items() if k != "total"), rel=1e-6)
    assert all(quarter_terms[k] == paper_terms[k] for k in paper_terms if k != "total")


def _rim_outputs():
    rng = np.random.default_rng(1)
    heads = {}
    for rosta in ("TT", "FT", "BT"):
        classes = 3 if rosta == "TT" else 2
        gl = torch.from_numpy(rng.normal(0, 2, (2, classes, 64, 64)).astype(np.float32))
        fl = torch.from_numpy(rng.normal(0, 2, (2, 1, 64, 64)).astype(np.float32))
        heads[rosta] = _outputs(rosta, gl, fl)
    rim = torch.from_numpy(rng.uniform(0, 1, (2, 1, 64, 64)).astype(np.float32))
    return {**heads["TT"], "fusion": rim, "rosta": heads}


def test_rim_loss_is_three_groups_plus_the_final_matte(data):
    batch = data[0]
    out = _rim_outputs()
    total, terms = losses.gfm_loss(out, batch, "RIM")
    groups = {r: sum(losses.rosta_loss(out["rosta"][r], batch, r).values()).item() for r in ("TT", "FT", "BT")}
    final = sum(losses.collaborative_matting_loss(out["fusion"], batch).values()).item()
    assert total.item() == pytest.approx(sum(groups.values()) + final, rel=1e-6)
    for r in groups:
        assert terms[r].item() == pytest.approx(groups[r], rel=1e-6)
    official, official_terms = losses.gfm_loss(out, batch, "RIM", official=True)
    assert official.item() == pytest.approx(OFFICIAL_TOTALS["RIM"], rel=1e-5)
    # the official BT group is computed on the FT head's outputs
    bt_from_ft = losses.gfm_loss(out, batch, "RIM", official={"rim_bt_reads_ft"})[1]["BT"]
    expected = sum(losses.rosta_loss(out["rosta"]["FT"], batch, "BT").values())
    assert bt_from_ft.item() == pytest.approx(expected.item(), rel=1e-6)


def test_official_flags_parsing():
    assert losses.official_flags(False) == frozenset()
    assert losses.official_flags(True) == frozenset(losses.OFFICIAL_DIFFERENCES)
    assert losses.official_flags("ce_on_sigmoid, quarter_weights") == {"ce_on_sigmoid", "quarter_weights"}
    assert losses.official_flags("true") == frozenset(losses.OFFICIAL_DIFFERENCES)
    with pytest.raises(ValueError, match="unknown difference"):
        losses.official_flags({"no_such_thing"})


def test_every_official_difference_changes_something(data):
    batch, logits, focus_logits = data
    paper = {}
    for rosta in ("TT", "FT", "BT"):
        out = _outputs(rosta, torch.from_numpy(logits[3 if rosta == "TT" else 2]), torch.from_numpy(focus_logits))
        paper[rosta] = (out, losses.gfm_loss(out, batch, rosta)[0].item())
    rim = _rim_outputs()
    rim_paper = losses.gfm_loss(rim, batch, "RIM")[0].item()
    for name in losses.OFFICIAL_DIFFERENCES:
        changed = [losses.gfm_loss(out, batch, r, official={name})[0].item() != pytest.approx(value, rel=1e-7)
                   for r, (out, value) in paper.items()]
        changed.append(losses.gfm_loss(rim, batch, "RIM", official={name})[0].item()
                       != pytest.approx(rim_paper, rel=1e-7))
        assert any(changed), name
