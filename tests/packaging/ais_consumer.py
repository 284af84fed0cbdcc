"""Run an AIS package with bioimageio.core alone: ``import samzoo`` fails in this process.

Usage: ``python ais_consumer.py PACKAGE WEIGHT_FORMAT OUT_DIR BLOCKSIZE IMAGE.npy ...``
(BLOCKSIZE: ``n`` of the block size ``min + n * step``; ``none``: whole-image prediction).
Writes ``OUT_DIR/<image stem>.npy``, the maps.
Run by ``test_ais_consumer.py`` in a subprocess, so samzoo being installed cannot help.
"""

import sys

sys.modules["samzoo"] = None  # before anything else: every `import samzoo...` now raises ImportError

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from bioimageio.core import create_prediction_pipeline, predict  # noqa: E402
from bioimageio.spec import load_description  # noqa: E402


def main(package: str, weight_format: str, out_dir: str, blocksize: str, *images: str) -> None:
    try:
        import samzoo  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("samzoo is importable: this check would prove nothing")
    descr = load_description(package)
    for path in images:
        # a new pipeline per image: predict() unloads it when done
        pipeline = create_prediction_pipeline(descr, devices=["cpu"], weight_format=weight_format)
        image = xr.DataArray(np.load(path)[None, None], dims=("batch", "channel", "y", "x"))
        # per axis: bioimageio.core 0.11 reads a plain 0 as "no parameter" and uses its default (10)
        kwargs = {} if blocksize == "none" else {"blocksize_parameter": {("image", "y"): int(blocksize),
                                                                         ("image", "x"): int(blocksize)}}
        sample = predict(model=pipeline, inputs={"image": image}, **kwargs)
        np.save(Path(out_dir) / Path(path).name, sample.members["maps"].data.values[0])


if __name__ == "__main__":
    main(*sys.argv[1:])
