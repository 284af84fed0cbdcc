import torch

from samzoo.segmentation.mask_decoder import decode_masks, decode_tokens, upscale_masks


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


def test_factored_decoding_equals_decode_masks(tiny_model):
    """decode_tokens(factored=True) + upscale_masks: micro-sam's AMG path, the same numbers."""
    sam = tiny_model.sam
    torch.manual_seed(2)
    pe = sam.prompt_encoder.get_dense_pe()
    points = (torch.rand(4, 1, 2) * 128, torch.ones(4, 1, dtype=torch.int))
    sparse, dense = sam.prompt_encoder(points=points, boxes=None, masks=None)
    grid = tuple(pe.shape[-2:])
    with torch.no_grad():
        # one image for all prompts, and one image per prompt (the attention's other branch)
        for embedding in (torch.randn(1, 256, *grid), torch.randn(4, 256, *grid)):
            for multimask, chosen in ((True, range(1, 4)), (False, range(1))):
                expected_masks, expected_iou = decode_masks(sam.mask_decoder, embedding, pe, sparse, dense[:1],
                                                            multimask)
                tokens, image = decode_tokens(sam.mask_decoder, embedding, pe, sparse, dense[:1], factored=True)
                iou = sam.mask_decoder.iou_prediction_head(tokens[:, 0])[:, chosen.start:chosen.stop]
                torch.testing.assert_close(iou, expected_iou, atol=1e-4, rtol=1e-4)
                masks = upscale_masks(sam.mask_decoder, tokens, image, grid, chosen)
                torch.testing.assert_close(masks, expected_masks, atol=1e-4, rtol=1e-4)
