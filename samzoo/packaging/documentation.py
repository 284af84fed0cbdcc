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

- **Input** `image`: `(batch, channel, y, x)`, {channels} channel(s), exactly {size} x {size} pixels,
  any numeric type. The package's preprocessing maps each image's 1st..99.8th percentile range
  to [0, 1] and clips (`scale_range` + `clip`; uint8 RGB: divided by 255), as samzoo does. Larger images: cut them into
  {size} x {size} tiles with an overlap (samzoo uses {halo} pixels), keep each tile's centre.
- **Output** `maps`: `(batch, channel, y, x)`, 3 channels, each in [0, 1]:
  `foreground` (probability), `center_distance` (distance to the object's centre, normalised per
  object, 0 at the centre) and `boundary_distance` (distance to the object's boundary,
  normalised per object, 1 deep inside).
- **Weights**: `pytorch_state_dict` (needs samzoo: `samzoo.packaging.networks.AISNetwork`) and
  `torchscript` (runs with PyTorch alone). Both hold the image encoder and AIS decoder; the
  state dict also holds SAM's prompt encoder and mask decoder, so samzoo loads the whole model
  from it.

### Post-processing: from maps to instances (seeded watershed)

samzoo's `samzoo.segmentation.watershed.watershed_from_maps`, with the defaults
{watershed}. Without samzoo, with numpy, scipy and scikit-image:

```python
import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import remove_small_objects
from skimage.segmentation import relabel_sequential, watershed

def instances(maps, fg=0.5, center=0.5, boundary=0.5, min_size=25):   # maps: (3, y, x)
    foreground = maps[0] > fg
    seeds, _ = ndi.label(foreground & (maps[1] < center) & (maps[2] > boundary))
    seeds = remove_small_objects(seeds, max_size=max(min_size // 4, 1) - 1)
    labels = watershed(-maps[2], markers=seeds, mask=foreground)
    labels = remove_small_objects(labels, max_size=min_size - 1)
    return relabel_sequential(labels)[0]
```

Seeds are pixels near an object's centre and far from its boundary; they grow over the
inverted boundary distance inside the foreground. Raise `boundary` to split touching objects
more eagerly, lower `fg` to keep faint ones.
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
                          image_description: str) -> str:
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
    """
    size = config.input_size
    grid = size // 16
    title = f"# {config.name or config.architecture}: {'automatic instance segmentation' if kind == 'ais' else 'prompts'}\n"
    body = card_body.strip()
    if body.startswith("# "):  # the card's own title is replaced by the package title
        body = body.split("\n", 1)[1].strip() if "\n" in body else ""
    if kind == "ais":
        section = _AIS.format(channels=in_channels, size=size, halo=size // 8,
                              watershed=", ".join(f"`{k}={v}`" for k, v in WATERSHED_DEFAULTS.items()))
        note = " (`samzoo.segmentation.ais.ais_maps` on the crop)"
    else:
        section = _PROMPT.format(size=size, grid=grid, mask=4 * grid)
        note = " (`samzoo.packaging.networks.PromptNetwork`, which matches `samzoo.predict`)"
    # the card may have a "# Validation" section of its own (training-time validation): demote it
    body = body.replace("\n# Validation", "\n## Validation of the model (from its card)")
    validation = _VALIDATION.format(image=image_description, ais_note=note)
    return "\n".join(part for part in (title, body, section, validation) if part) + "\n"
