"""Make tests/models/data/unetr_reference.npz with micro-sam's own AIS decoder (run with micro-sam's Python).

    ../msam-venv/bin/python scripts/make_unetr_reference.py

The venv needs micro_sam==1.8.14 torch-em==0.10.9 (see docs/guides/micro_sam.md). For both
upsampling variants (transposed convolutions, as the published decoders; interpolation, torch-em's
default), micro-sam's ``get_decoder`` builds the decoder, loads seeded weights
(``tests/models/unetr_reference.py``), and runs on a seeded embedding exactly as
``InstanceSegmentationWithDecoder.initialize`` does (never in eval mode). Stored: the state-dict
keys and shapes, and the outputs at every third pixel.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import torch
from micro_sam.instance_segmentation import get_decoder
from segment_anything.modeling import ImageEncoderViT

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("unetr_reference", ROOT / "tests/models/unetr_reference.py")
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)


def main() -> None:
    # any SAM image encoder will do: the decoder only reads its neck's width (256) and input size
    encoder = ImageEncoderViT(img_size=1024, patch_size=16, embed_dim=16, depth=1, num_heads=1, out_chans=256)
    out = {}
    for transpose in (True, False):
        sampler = "decoder.samplers.0.block.weight" if transpose else "decoder.samplers.0.conv.weight"
        # get_decoder reads the upsampling variant from the state's keys: give it a state of the right kind
        from torch_em.model import UNETR

        unetr = UNETR(backbone="sam", encoder=encoder, out_channels=3, use_sam_stats=True, final_activation="Sigmoid",
                      use_skip_connection=False, resize_input=True, use_conv_transpose=transpose)
        shapes = {k: tuple(v.shape) for k, v in unetr.state_dict().items() if not k.startswith("encoder")}
        assert sampler in shapes
        decoder = get_decoder(encoder, ref.seeded_state(shapes), device="cpu")
        assert decoder.training  # micro-sam never switches it to eval mode
        with torch.no_grad():
            maps = decoder(ref.seeded_embedding(), ref.INPUT_SHAPE, ref.ORIGINAL_SHAPE)[0].numpy()
        name = "transpose" if transpose else "interpolate"
        out[f"{name}_maps"] = maps[:, ::ref.STRIDE, ::ref.STRIDE].astype(np.float32)
        out[f"{name}_keys"] = np.array(json.dumps([[k, list(s)] for k, s in shapes.items()]))
    np.savez_compressed(ROOT / "tests/models/data/unetr_reference.npz", **out)
    print({k: v.shape for k, v in out.items()})


if __name__ == "__main__":
    main()
