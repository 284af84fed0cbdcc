import torch

from samzoo.segmentation.mask_decoder import decode_masks


def test_decode_masks_equals_sams_mask_decoder(tiny_model):
    sam = tiny_model.sam
    torch.manual_seed(1)
    embedding, pe = torch.randn(1, 256, 8, 8), sam.prompt_encoder.get_dense_pe()
    points = (torch.rand(5, 2, 2) * 128, torch.tensor([[1, 0]] * 5))
    boxes = torch.tensor([[10.0, 20, 60, 90]] * 5)
    with torch.no_grad():
        for kind in ({"points": points, "boxes": None, "masks": None},
                     {"points": points, "boxes": boxes, "masks": None},
                     {"points": None, "boxes": boxes, "masks": torch.randn(5, 1, 32, 32)}):
            sparse, dense = sam.prompt_encoder(**kind)
            shared = kind["masks"] is None  # then the dense embedding is the same for every prompt
            for multimask in (True, False):
                expected = sam.mask_decoder(image_embeddings=embedding, image_pe=pe, sparse_prompt_embeddings=sparse,
                                            dense_prompt_embeddings=dense, multimask_output=multimask)
                got = decode_masks(sam.mask_decoder, embedding, pe, sparse, dense[:1] if shared else dense, multimask)
                for a, b in zip(got, expected):
                    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
