"""The ``documentation.md`` of each package: the model card plus how to run this package.

The AIS package's documentation spells out the watershed post-processing so that a consumer
without samzoo (deepImageJ, ilastik, bioimageio.core) can turn the three maps into instances.
"""

from __future__ import annotations

from samzoo.models.model import ModelConfig
from samzoo.segmentation.watershed import (BOUNDARY_THRESHOLD, CENTER_THRESHOLD, FOREGROUND_THRESHOLD,
                                           MIN_SIZE)

WATERSHED_DEFAULTS = {"foreground_threshold": FOREGROUND_THRESHOLD, "center_threshold": CENTER_THRESHOLD,
                      "boundary_threshold": BOUNDARY_THRESHOLD, "min_size": MIN_SIZE}

_AIS = """\
## This package: automatic instance segmentation (AIS)

- **Input** `image`: `(batch, channel, y, x)`, {channels} channel(s), **any height and width**
  (declared as at least {size} in steps of {halo}; smaller images also work in a whole-image
  prediction), any numeric type. {normalisation}
- **Output** `maps`: `(batch, channel, y, x)`, the input's height and width, 3 channels, each in
  [0, 1]: `foreground` (probability), `center_distance` (distance to the object's centre,
  normalised per object, 0 at the centre) and `boundary_distance` (distance to the object's
  boundary, normalised per object, 1 deep inside). Output halo: {halo} pixels.
- **Tiling inside the network.** SAM's encoder takes exactly {size} x {size} pixels, so the network
  cuts the image into samzoo's tiles ({size} pixels, overlap {halo}, the same grid as
  `samzoo segment`) and stitches the tiles' inner regions: one call on a whole image gives
  samzoo's own maps, with no seams.
- **Weights**: `pytorch_state_dict` (needs samzoo: `samzoo.packaging.networks.AISNetwork`),
  `torchscript` (runs with PyTorch alone) and `onnx` (runs with onnxruntime alone; images at least
  {onnx_min} pixels a side). All hold the image encoder and AIS decoder and give the same maps; the
  state dict also holds SAM's prompt encoder and mask decoder, so samzoo loads the whole model
  from it.
{object_size}
### Running it without samzoo (bioimageio.core)

```python
import numpy as np, xarray as xr
from bioimageio.core import create_prediction_pipeline, predict
from bioimageio.spec import load_description

descr = load_description("{package}")
pipeline = create_prediction_pipeline(descr, devices=["cpu"], weight_format="torchscript")
image = xr.DataArray(my_image[None, None], dims=("batch", "channel", "y", "x"))   # (1, 1, H, W)
maps = predict(model=pipeline, inputs={{"image": image}}).members["maps"].data.values[0]   # (3, H, W)
```

Whole-image prediction (as above) gives samzoo's maps to float rounding (samzoo's tests allow
1e-4, on real images of 512 x 512 and 700 x 900 pixels). Blockwise prediction, for images too
large for memory (`blocksize_parameter={{("image", "y"): n, ("image", "x"): n}}`: blocks of
{size} + n * {halo} pixels overlapping by the halo), is seamless; with n = 0 every block is one of
samzoo's tiles and the maps are samzoo's except in the last row and column of blocks, which
bioimageio.core shifts to end at the image edge (the maps depend a little on where a tile starts).

### Post-processing: from maps to instances (seeded watershed)

samzoo's `samzoo.segmentation.watershed.watershed_from_maps`, with this package's parameters
({watershed}; also in `rdf.yaml` under `config: samzoo: watershed`). Without samzoo, with numpy
and scikit-image:

```python
import numpy as np
from skimage.measure import label
from skimage.segmentation import relabel_sequential, watershed

def instances(maps, foreground_threshold={foreground_threshold}, center_threshold={center_threshold},
              boundary_threshold={boundary_threshold}, min_size={min_size}):
    \"\"\"AIS maps (3, y, x) -> instance labels (y, x), 0 = background.\"\"\"
    foreground = maps[0] > foreground_threshold
    # seeds: near an object's centre and far from its boundary
    seeds = label(foreground & (maps[1] < center_threshold) & (maps[2] > boundary_threshold), connectivity=1)
    seeds[np.bincount(seeds.ravel())[seeds] < max(min_size // 4, 1)] = 0
    labels = watershed(-maps[2], markers=seeds, mask=foreground)
    labels[np.bincount(labels.ravel())[labels] < min_size] = 0
    return relabel_sequential(labels)[0]

labels = instances(maps)
```

Seeds grow over the inverted boundary distance inside the foreground. Raise
`boundary_threshold` to split touching objects more eagerly, lower `foreground_threshold` to keep
faint ones. On the maps of the same image this gives the same labels as `samzoo segment --mode
ais --views 1` (checked by samzoo's tests on a real 700 x 900 image). By default samzoo also runs
the network on the image turned by a quarter (`numpy.rot90`), turns those maps back
(`numpy.rot90(m, -1, axes=(1, 2))`) and takes the larger foreground and the mean of the two
distance maps before the watershed; the same steps around this package give its `--views 2`
labels.
"""

_PROMPT = """\
## This package: segmentation from prompts

The tensor layout of micro-sam's bioimage.io exports (batch size 1, `object` and `point` axes):

| tensor | axes | meaning |
|---|---|---|
| `image` | batch, channel (R, G, B), y, x | 0..255 (grey images: the same channel three times, percentile-normalised to 0..255 as samzoo does) |
| `box_prompts` (optional) | batch, object, channel | `xmin, ymin, xmax, ymax` in pixels |
| `point_prompts` (optional) | batch, object, point, channel | `x, y` in pixels |
| `point_labels` (optional) | batch, object, point | 1 positive, 0 negative, -1 padding |
| `mask_prompts` (optional) | batch, object, channel, y, x | {mask} x {mask} mask logits of the resized, padded image |
| `embeddings` (optional) | batch, channel, y, x | 256 x {grid} x {grid}, a previous call's third output: skips the encoder |
| **`masks`** | batch, object, channel, y, x | uint8 0/1, one mask per object, at the image's size |
| **`scores`** | batch, object, channel | the predicted IoU of each mask |
| **`embeddings`** | batch, channel, y, x | the image embedding |

Coordinates are SAM's `(x, y)`, unlike samzoo's Python API (`(y, x)`). The image is resized so
that its longer side is {size} pixels. All prompt tensors must agree on the number of objects.

What works where (checked by samzoo's tests with bioimageio.core 0.11):

- `bioimageio test` runs the test tensors: image, boxes, points, labels, masks and the
  embeddings all given (the encoder is skipped because the embeddings are given).
- bioimageio.core's prediction pipeline with `image` plus any subset of the prompts (the
  missing optional inputs become `None`) gives the same masks as samzoo's `predict`.
- `image` alone returns zero objects and the embedding, so one call computes the embedding and
  later calls pass it back with the prompts.
- Weights: `pytorch_state_dict` only (it needs samzoo: `samzoo.packaging.networks.PromptNetwork`);
  optional inputs have no TorchScript/ONNX equivalent here. For consumers without samzoo use
  the AIS package.
"""

_VALIDATION = """\
# Validation

- Test tensors come from a real image ({image}): the expected outputs were computed by
  samzoo itself{ais_note}. `bioimageio test` reproduces them for every weight format.
- samzoo's test suite (`tests/packaging/`) builds these packages, runs `bioimageio test` on them
  offline, loads them back with `samzoo.load_model` and checks that automatic and prompt
  segmentation give the same masks as the original model on a real image.
"""


def package_documentation(kind: str, card_body: str, config: ModelConfig, *, in_channels: int,
                          image_description: str, package: str = "", renormalise: bool = True) -> str:
    """The Markdown documentation of an ``"ais"`` or ``"prompt"`` package.

    Parameters
    ----------
    kind : {"ais", "prompt"}
    card_body : str
        The model card without its front matter ('' when the model has no card).
    config : ModelConfig
    in_channels : int
        Channels of the AIS input (1 or 3).
    image_description : str
        Where the test image came from.
    package : str
        The package's file name, for the example code.
    renormalise : bool
        The AIS input is percentile-normalised (False: uint8 RGB divided by 255).
    """
    size = config.input_size
    grid = size // 16
    title = f"# {config.name or config.architecture}: {'automatic instance segmentation' if kind == 'ais' else 'prompts'}\n"
    body = card_body.strip()
    if body.startswith("# "):  # the card's own title is replaced by the package title
        body = body.split("\n", 1)[1].strip() if "\n" in body else ""
    if kind == "ais":
        normalisation = (
            "uint8 RGB is divided by 255 (`scale_linear`), as samzoo takes it." if not renormalise else
            "The preprocessing (`scale_range`, per sample) maps the image's 1st..99.8th percentile range "
            "to [0, 1], over the whole image (every block of an image shares it); the network clips to "
            "[0, 1]. That is samzoo's normalisation.")
        object_size = "" if not config.object_diameter else (
            f"- **Object size.** The model was trained on objects brought to a median diameter of about "
            f"{config.object_diameter:g} pixels, and segments objects of that size best. The package "
            "segments the image at the size it is given: resize images whose objects are far smaller or "
            "larger first (samzoo finds the factor itself: `samzoo segment --scale auto`).\n")
        section = _AIS.format(channels=in_channels, size=size, halo=size // 8, package=package,
                              onnx_min=3 * (size // 8), object_size=object_size,
                              normalisation=normalisation, **WATERSHED_DEFAULTS,
                              watershed=", ".join(f"`{k}={v}`" for k, v in WATERSHED_DEFAULTS.items()))
        note = " (`samzoo.segmentation.ais.ais_maps` on the crop)"
    else:
        section = _PROMPT.format(size=size, grid=grid, mask=4 * grid)
        note = " (`samzoo.packaging.networks.PromptNetwork`, which matches `samzoo.predict`)"
    # the card may have a "# Validation" section of its own (training-time validation): demote it
    body = body.replace("\n# Validation", "\n## Validation of the model (from its card)")
    validation = _VALIDATION.format(image=image_description, ais_note=note)
    return "\n".join(part for part in (title, body, section, validation) if part) + "\n"
