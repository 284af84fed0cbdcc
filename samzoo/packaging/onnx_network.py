"""The AIS network without Python control flow, for ONNX: :class:`~samzoo.packaging.networks.TiledAIS`
rewritten as fixed tensor operations.

ONNX graphs have no loops over a number of tiles that depends on the image size, and no ``if``
on pixel values, so here every decision is a tensor: the padding bands (:func:`image_box`'s
mirror test) become flags, the percentiles are read from the sorted pixels, and all tiles of
the image are gathered into one batch (index arithmetic reproducing samzoo's tile grid; a few
tiles past the image are computed and never read), run through the tile network at once and
gathered back. The result equals :class:`TiledAIS`'s.
"""

from __future__ import annotations

import torch


def _mirrored(band: torch.Tensor, inside: torch.Tensor, dim: int) -> torch.Tensor:
    """0-d bool: ``band`` is the mirror image of ``inside`` along ``dim`` and not flat."""
    return (band == inside.flip([dim])).all() & (band.max() > band.min())


def _spans(start: torch.Tensor, stop: torch.Tensor, n_max: int, tile_size: int, halo: int):
    """samzoo's tiles along one axis of the image ``[start, stop)`` of the input, as index tensors.

    Returns
    -------
    rows : Tensor (n_max, tile_size) int64, the input positions each tile's canvas reads (clamped)
    valid : Tensor (n_max, tile_size) bool, where the canvas holds image (else black padding)
    outer_start : Tensor (n_max,) int64, each tile's outer start within the image
    single : Tensor, bool, the image fits one tile
    """
    length = stop - start
    step = tile_size - 2 * halo
    j = torch.arange(n_max, device=start.device)
    single = length <= tile_size
    outer_start = torch.where(single, torch.zeros_like(j), torch.clamp(j * step - halo, min=0))
    outer_stop = torch.where(single, length.expand(n_max), torch.minimum(j * step + step + halo, length))
    offset = outer_start[:, None] + torch.arange(tile_size, device=start.device)[None]
    valid = offset < outer_stop[:, None]
    return start + torch.clamp(offset, max=length - 1), valid, outer_start, single


def _owners(size: int, start: torch.Tensor, stop: torch.Tensor, outer_start: torch.Tensor,
            single: torch.Tensor, n_max: int, tile_size: int, halo: int):
    """Per output position: the tile that owns it and the position in that tile's canvas.

    Positions in the padding bands read the mirror image of the maps inside (as
    :func:`~samzoo.packaging.networks.mirror_bands`).
    """
    position = torch.arange(size, device=start.device)
    position = torch.where(position < start, 2 * start - 1 - position, position)
    position = torch.where(position >= stop, 2 * stop - 1 - position, position) - start
    step = tile_size - 2 * halo
    tile = torch.where(single, torch.zeros_like(position), torch.clamp(position // step, max=n_max - 1))
    return tile, position - outer_start[tile]


class GatheredAIS(torch.nn.Module):
    """:class:`~samzoo.packaging.networks.TiledAIS` for ONNX (batch size 1).

    Parameters
    ----------
    tile_network : nn.Module
        ``(N, 3, S, S)`` 0..255 -> ``(N, 3, S, S)`` maps.
    tile_size, halo : int
    renormalise : bool
        As for :class:`~samzoo.packaging.networks.TiledAIS`.
    """

    def __init__(self, tile_network: torch.nn.Module, tile_size: int, halo: int, renormalise: bool = True) -> None:
        super().__init__()
        self.tile_network, self.tile_size, self.halo, self.renormalise = tile_network, tile_size, halo, renormalise

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(1, C, H, W)`` -> ``(1, 3, H, W)``; H and W at least ``3 * halo``."""
        h, size = self.halo, self.tile_size
        x = image[0].float()
        height, width = x.shape[1], x.shape[2]
        zero = torch.zeros((), dtype=torch.int64, device=x.device)
        top = _mirrored(x[:, :h], x[:, h:2 * h], 1)
        bottom = _mirrored(x[:, height - h:], x[:, height - 2 * h:height - h], 1)
        left = _mirrored(x[:, :, :h], x[:, :, h:2 * h], 2)
        right = _mirrored(x[:, :, width - h:], x[:, :, width - 2 * h:width - h], 2)
        y0, x0 = torch.where(top, zero + h, zero), torch.where(left, zero + h, zero)
        y1 = torch.where(bottom, zero + height - h, zero + height)
        x1 = torch.where(right, zero + width - h, zero + width)
        if self.renormalise:
            x = torch.where(top & bottom & left & right, self._percentile_range(x, y0, y1, x0, x1), x)
        x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).clamp(0.0, 1.0) * 255.0
        if x.shape[0] == 1:
            x = x.expand(3, -1, -1)
        step = size - 2 * h
        ny, nx = (height + step - 1) // step, (width + step - 1) // step
        rows, row_valid, row_start, row_single = _spans(y0, y1, ny, size, h)
        cols, col_valid, col_start, col_single = _spans(x0, x1, nx, size, h)
        # (3, ny, S, nx, S): every tile's canvas, black where it runs past the image
        canvas = x[:, rows][:, :, :, cols] * (row_valid[:, :, None, None] & col_valid[None, None]).float()
        tiles = canvas.permute(1, 3, 0, 2, 4).reshape(ny * nx, 3, size, size)
        maps = self.tile_network(tiles)  # (ny * nx, 3, S, S)
        tile_y, in_y = _owners(height, y0, y1, row_start, row_single, ny, size, h)
        tile_x, in_x = _owners(width, x0, x1, col_start, col_single, nx, size, h)
        tile = tile_y[:, None] * nx + tile_x[None, :]  # (H, W)
        out = maps.permute(0, 2, 3, 1)[tile, in_y[:, None], in_x[None, :]]  # (H, W, 3)
        return out.permute(2, 0, 1)[None]

    @staticmethod
    def _percentile_range(x: torch.Tensor, y0: torch.Tensor, y1: torch.Tensor, x0: torch.Tensor,
                          x1: torch.Tensor) -> torch.Tensor:
        """:func:`~samzoo.packaging.networks.percentile_range` (1st..99.8th) over ``x[:, y0:y1, x0:x1]``."""
        rows = torch.arange(x.shape[1], device=x.device)
        cols = torch.arange(x.shape[2], device=x.device)
        inside = ((rows >= y0) & (rows < y1))[:, None] & ((cols >= x0) & (cols < x1))[None]
        inside = inside[None].expand_as(x) & torch.isfinite(x)
        values = torch.sort(torch.where(inside, x, torch.full_like(x, float("inf"))).reshape(-1).double()).values
        count = inside.sum().clamp(min=1)
        bounds = []
        for q in (1.0, 99.8):
            position = q / 100.0 * (count - 1).double()
            i = position.floor().long()
            j = torch.clamp(i + 1, max=count - 1)
            bounds.append(values[i] + (values[j] - values[i]) * (position - i.double()))
        lo, hi = bounds
        scaled = ((x.double() - lo) / torch.where(hi > lo, hi - lo, torch.ones_like(hi))).float()
        return torch.where(hi > lo, scaled, torch.zeros_like(x))


def _patch_merging_forward(self, x: torch.Tensor) -> torch.Tensor:
    """MobileSAM's ``PatchMerging.forward`` with the batch size taken as ``x.shape[0]``.

    The original's ``len(x)`` is a Python int even while torch.export traces, so the exported
    graph would keep the example's number of tiles; ``x.shape[0]`` stays symbolic. Same result.
    """
    if x.ndim == 3:
        height, width = self.input_resolution
        x = x.view(x.shape[0], height, width, -1).permute(0, 3, 1, 2)
    x = self.act(self.conv1(x))
    x = self.act(self.conv2(x))
    x = self.conv3(x)
    return x.flatten(2).transpose(1, 2)


def export_onnx(tiled: torch.nn.Module, path, example: torch.Tensor, *, min_size: int, opset: int = 18):
    """Write :class:`GatheredAIS` ``tiled`` as ONNX, height and width dynamic (at least ``min_size``).

    Returns the path.
    """
    import contextlib
    import warnings

    from mobile_sam.modeling import tiny_vit_sam

    dims = {2: torch.export.Dim("height", min=min_size), 3: torch.export.Dim("width", min=min_size)}
    original = tiny_vit_sam.PatchMerging.forward
    tiny_vit_sam.PatchMerging.forward = _patch_merging_forward
    try:
        with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(None):
            warnings.simplefilter("ignore")  # the exporter reports its progress and deprecations
            torch.onnx.export(tiled, (example,), str(path), dynamo=True, input_names=["image"],
                              output_names=["maps"], dynamic_shapes={"image": dims}, opset_version=opset,
                              external_data=False)
    finally:
        tiny_vit_sam.PatchMerging.forward = original
    return path
