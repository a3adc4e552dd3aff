"""effect.stylize's recipe runs end to end in quick mode: train, export, validate, evaluate."""

from __future__ import annotations

from pathlib import Path

from museforge.plugins.effect import stylize
from museforge.plugins.effect.stylize_quality import STYLE_NAMES
from tests.models import quick_export


def test_quick_export(tmp_path: Path) -> None:
    out = tmp_path / "stylize"
    manifest = quick_export("effect.stylize", out)
    assert [t.name for t in manifest.inputs] == ["image", "style"]
    assert manifest.dataset["fingerprint"]
    assert set(manifest.metrics["styles"]) == set(STYLE_NAMES)
    for figures in manifest.metrics["styles"].values():
        assert {"ratio", "ssim", "check_ratio", "per_photo"} <= set(figures)
    assert (out / "1" / "model.onnx").stat().st_size < 4_000_000


def test_serving_constants_match_the_network() -> None:
    import torch

    from museforge.plugins.effect.stylize_net import RECEPTIVE_RADIUS, Stylizer

    assert stylize.STYLES == STYLE_NAMES
    assert stylize.HALO >= RECEPTIVE_RADIUS and stylize.HALO % stylize.GRID == 0
    assert stylize.BLEND % stylize.GRID == 0  # tile steps stay on the network's grid
    # The declared radius is the network's: the gradient of one output pixel, at every
    # phase of the 4-px grid, reaches exactly that far into the input.
    torch.manual_seed(0)
    net = Stylizer(len(STYLE_NAMES))
    with torch.no_grad():
        net.tail.weight.normal_(0.0, 0.05)
    reach = 0
    for centre in range(60, 64):
        image = torch.rand(1, 3, 128, 128, requires_grad=True)
        net(image, torch.tensor([0]))[0, :, centre, centre].sum().backward()
        assert image.grad is not None
        rows, cols = torch.nonzero(image.grad.abs().sum((0, 1)) > 0, as_tuple=True)
        reach = max(reach, int((rows - centre).abs().max()), int((cols - centre).abs().max()))
    assert reach == RECEPTIVE_RADIUS
