"""samzoo against micro-sam 1.8.14's own outputs for the same seeded vit_b weights and image.

The reference (``data/microsam_nuclei3d_vit_b_seed0.npz``, a few kB) was made by
``scripts/parity_microsam.py --reference ...`` with micro-sam in its own venv: vit_b weights from
segment-anything's initialisation after ``torch.manual_seed(0)`` and a UNETR decoder made right
after (both rebuilt here, byte for byte), slice 15 of the 3D nuclei, prompts from its annotations.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Path(__file__).parent / "data" / "microsam_nuclei3d_vit_b_seed0.npz"


def _parity_script():
    spec = importlib.util.spec_from_file_location("parity_microsam", ROOT / "scripts" / "parity_microsam.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_prompt_masks_and_ais_match_microsam(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("SAMZOO_SHARED", str(shared_data.parent))
    parity = _parity_script()
    reference = dict(np.load(REFERENCE))
    parity.make_weights(tmp_path, int(reference.pop("seed")))
    prompts = json.loads(str(reference.pop("prompts")))
    image, labels = parity.load_images(["nuclei3d"], 512)["nuclei3d"]
    for obj in prompts:
        np.save(tmp_path / f"nuclei3d_mask_{obj['id']}.npy", labels == obj["id"])
    ours, _ = parity.run_samzoo(tmp_path, {"nuclei3d": (image, labels)}, {"nuclei3d": prompts})
    counted = 0
    for key, value in reference.items():
        if key.endswith("|ais"):
            fraction, n = parity.matched_fraction(value, ours[key])
            assert n >= 5 and fraction >= 0.98, (fraction, n)
            continue
        expected = np.unpackbits(value)[:image.size].reshape(image.shape).astype(bool)
        if 0 < expected.mean() < 0.9:  # as the script counts: non-trivial masks only
            assert parity.iou(expected, ours[key]) >= 0.99, key
            counted += 1
    assert counted >= 20
