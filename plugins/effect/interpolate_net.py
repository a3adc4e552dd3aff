"""The interpolation network: block matching, then a time-conditioned U-Net that corrects and warps.

1. Motion estimate, fixed (no weights): block matching at quarter resolution (a
   symmetric cost volume, soft-argmin), then two symmetric Lucas-Kanade steps at
   quarter, half and full resolution for sub-pixel accuracy.
2. The U-Net (trained), at half resolution: both frames warped to t by the estimate, a
   plane holding t and the estimate (9 channels); the matching costs join at quarter
   resolution. Its head gives a motion correction per frame, a blend mask and a residual.
3. Synthesis: each full-resolution frame is warped to t by backward bicubic sampling
   along the linear-motion flows -t*V0 and (1-t)*V1, the warps are mixed by the mask and
   the residual adds what warping cannot give (occlusions, newly visible border).

The head starts at zero, so the untrained network is the fixed estimate's warp, and
training only learns the corrections. Why: a plain U-Net (frames in, frame out) or one
that has to find the motion itself barely left the linear blend within a CPU budget of
minutes; matching gives it the motion, and the U-Net learns what matching cannot know.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

WIDTHS = (32, 48, 64, 96)  # channels per U-Net level; the first works at half resolution
MULTIPLE = 2 ** len(WIDTHS)  # the half-resolution pooling + three more: input sides divide by this
FLOW_SCALE = 1.0  # px per unit of raw head output
RESIDUAL_SCALE = 1.0  # intensity per unit of raw head output
WARP_MODE = "bicubic"  # sharper than bilinear; exported as ONNX GridSample (opset >= 16) "cubic"
RADIUS = 3  # block-matching reach at quarter resolution: +-12 px from the middle frame to each
WINDOW = 9  # block side at quarter resolution (36 px)
SHARPNESS = 3000.0  # soft-argmin temperature for mean squared differences of [0, 1] pixels
LK_WINDOW = 9  # Lucas-Kanade block side at each resolution
LK_STEPS = 2  # Lucas-Kanade iterations per resolution
COST_GAIN = 10.0  # sqrt of a cost: a 0.1 r.m.s. difference becomes ~1


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.1),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.1))


def _pixel_grid(like: Tensor) -> tuple[Tensor, Tensor]:
    """Row and column indices ([1, 1, H, 1], [1, 1, 1, W]) built from the tensor's own size.

    Cumulative sums of ones rather than arange on a Python size keep both axes dynamic
    in the exported graph.
    """
    ones = torch.ones_like(like[:1, :1])
    rows = torch.cumsum(ones[:, :, :, :1], dim=2) - 1.0
    cols = torch.cumsum(ones[:, :, :1, :], dim=3) - 1.0
    return rows, cols


def warp(image: Tensor, flow: Tensor) -> Tensor:
    """Backward warp: out(p) = image(p + flow(p)), flow [N, 2, H, W] as (dy, dx) pixels."""
    rows, cols = _pixel_grid(image)
    # Normalised coordinates (align_corners=True: -1 and 1 are the outer pixel centres).
    gy = (rows + flow[:, :1]) * (2.0 / torch.clamp(rows[:, :, -1:, :], min=1.0)) - 1.0
    gx = (cols + flow[:, 1:]) * (2.0 / torch.clamp(cols[:, :, :, -1:], min=1.0)) - 1.0
    grid = torch.cat([gx, gy], dim=1).permute(0, 2, 3, 1)
    return F.grid_sample(image, grid, mode=WARP_MODE, padding_mode="border", align_corners=True)


def cost_volume(a: Tensor, b: Tensor, radius: int, window: int) -> Tensor:
    """Symmetric block-matching costs: mean squared difference of a(p - d) and b(p + d).

    For every offset d (|d| <= radius per axis) the per-pixel cost is averaged over a
    ``window`` x ``window`` neighbourhood, so a match is judged on a block, not a pixel.
    Anchored between the frames: a match at d means the content moves by 2d from the
    first frame to the second. [N, (2r + 1)^2, H, W].
    """
    h, w = a.shape[2], a.shape[3]
    pa = F.pad(a, (radius, radius, radius, radius), mode="replicate")
    pb = F.pad(b, (radius, radius, radius, radius), mode="replicate")
    costs = []
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            sa = pa[:, :, radius - dy:radius - dy + h, radius - dx:radius - dx + w]
            sb = pb[:, :, radius + dy:radius + dy + h, radius + dx:radius + dx + w]
            costs.append(((sa - sb) ** 2).mean(dim=1, keepdim=True))
    return F.avg_pool2d(torch.cat(costs, dim=1), window, stride=1, padding=window // 2,
                        count_include_pad=False)


def _gradients(image: Tensor) -> tuple[Tensor, Tensor]:
    """Central differences (d/dy, d/dx) per channel, edge-replicated."""
    padded = F.pad(image, (1, 1, 1, 1), mode="replicate")
    h, w = image.shape[2], image.shape[3]
    gy = (padded[:, :, 2:2 + h, 1:1 + w] - padded[:, :, 0:h, 1:1 + w]) * 0.5
    gx = (padded[:, :, 1:1 + h, 2:2 + w] - padded[:, :, 1:1 + h, 0:w]) * 0.5
    return gy, gx


def lucas_kanade(a: Tensor, b: Tensor, motion: Tensor, window: int, damping: float = 1e-4) -> Tensor:
    """One symmetric Lucas-Kanade step: ``motion`` (a -> b, [N, 2, H, W] px of these images) refined.

    Both images are warped half-way to the middle by the current motion; the remaining
    displacement solves a 2x2 least-squares system per pixel, over a ``window`` block.
    Sub-pixel accurate where block matching is only as fine as its grid.
    """
    wa = warp(a, motion * -0.5)
    wb = warp(b, motion * 0.5)
    ay, ax = _gradients(wa)
    by, bx = _gradients(wb)
    gy, gx = (ay + by) * 0.5, (ax + bx) * 0.5
    diff = wa - wb

    def box(x: Tensor) -> Tensor:
        return F.avg_pool2d(x.sum(dim=1, keepdim=True), window, stride=1, padding=window // 2,
                            count_include_pad=False)

    syy, sxx, sxy = box(gy * gy) + damping, box(gx * gx) + damping, box(gx * gy)
    ry, rx = box(gy * diff), box(gx * diff)
    det = syy * sxx - sxy * sxy
    dy = (sxx * ry - sxy * rx) / det
    dx = (syy * rx - sxy * ry) / det
    return motion + torch.clamp(torch.cat([dy, dx], dim=1), -2.0, 2.0)


class Interpolator(nn.Module):
    """(image, image2 [N, 3, H, W] in [0, 1], t [N]) -> the frame at t, [N, 3, H, W].

    H and W must be multiples of ``MULTIPLE`` (the tiler pads to it).
    """

    def __init__(self, widths: tuple[int, ...] = WIDTHS) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(2)
        corr = (2 * RADIUS + 1) ** 2
        self.down = nn.ModuleList()
        for i, w in enumerate(widths):
            cin = 9 if i == 0 else widths[i - 1] + (corr if i == 1 else 0)
            self.down.append(_block(cin, w))
        self.up = nn.ModuleList(
            _block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(len(widths) - 1)))
        offsets = torch.arange(-RADIUS, RADIUS + 1, dtype=torch.float32)
        dy, dx = torch.meshgrid(offsets, offsets, indexing="ij")
        # Full-resolution motion between the outer frames for each cost-volume entry.
        self.register_buffer("motions", torch.stack([dy.reshape(-1), dx.reshape(-1)]) * 8.0)
        self.head = nn.Conv2d(widths[0], 8, 3, padding=1)
        nn.init.zeros_(self.head.weight)  # start as the block-matching warp
        nn.init.zeros_(self.head.bias)  # type: ignore[arg-type]

    def motion(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        """Fixed coarse-to-fine motion estimate from the half-resolution frames (no weights).

        Returns the motion from the first frame to the second (full-resolution px, at half
        resolution) and the matching costs relative to the best (quarter resolution).
        """
        qa, qb = self.pool(a), self.pool(b)
        cost = cost_volume(qa, qb, RADIUS, WINDOW)
        weights = torch.softmax(cost * -SHARPNESS, dim=1)
        quarter = torch.einsum("nkhw,ck->nchw", weights, self.motions)
        for _ in range(LK_STEPS):
            quarter = lucas_kanade(qa, qb, quarter * 0.25, LK_WINDOW) * 4.0
        half = F.interpolate(quarter, scale_factor=2.0, mode="bilinear", align_corners=False)
        for _ in range(LK_STEPS):
            half = lucas_kanade(a, b, half * 0.5, LK_WINDOW) * 2.0
        # Costs relative to the best match, compressed: the U-Net sees how sure the match is.
        relative = torch.sqrt(cost - cost.min(dim=1, keepdim=True).values + 1e-4) * COST_GAIN
        return half, relative

    def forward(self, image: Tensor, image2: Tensor, t: Tensor) -> Tensor:
        tt = t.reshape(-1, 1, 1, 1)
        a, b = self.pool(image), self.pool(image2)
        with torch.no_grad():  # the estimate has no weights: no gradient needed through it
            start, relative = self.motion(a, b)
            full = F.interpolate(start, scale_factor=2.0, mode="bilinear", align_corners=False)
            for _ in range(LK_STEPS):
                full = lucas_kanade(image, image2, full, LK_WINDOW)
        # Both frames warped to t by the estimate (half-resolution px = full / 2): the U-Net
        # sees what is left to correct, and where the frames disagree (occlusions).
        wa = warp(a, -tt * start * 0.5)
        wb = warp(b, (1.0 - tt) * start * 0.5)
        x = torch.cat([wa, wb, torch.ones_like(a[:, :1]) * tt, start / 8.0], dim=1)
        skips = []
        for i, block in enumerate(self.down):
            if i == 1:  # quarter resolution: where the matching costs join
                x = torch.cat([self.pool(x), relative], dim=1)
            elif i > 1:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        x = skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = block(torch.cat([F.interpolate(x, scale_factor=2.0, mode="nearest"), skip], dim=1))
        out = F.interpolate(self.head(x), scale_factor=2.0, mode="bilinear", align_corners=False)
        # The head corrects the estimate for each frame.
        flow0 = -tt * (full + out[:, 0:2] * FLOW_SCALE)
        flow1 = (1.0 - tt) * (full + out[:, 2:4] * FLOW_SCALE)
        tc = torch.clamp(tt, 1e-3, 1.0 - 1e-3)
        mask = torch.sigmoid(out[:, 4:5] + torch.log((1.0 - tc) / tc))
        blended = mask * warp(image, flow0) + (1.0 - mask) * warp(image2, flow1)
        result = torch.clamp(blended + out[:, 5:8] * RESIDUAL_SCALE, 0.0, 1.0)
        return result

