import tifffile
import torch

from samzoo.cli.main import main
from samzoo.models.load import load_model
from samzoo.training.lora import LoRALinear, add_lora, merge_lora
from samzoo.models.architectures import build_sam


def test_lora_starts_as_identity_and_merges(hela_frame):
    sam = build_sam("samzoo_tiny", 64).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = sam.image_encoder(x)
    n = add_lora(sam.image_encoder, rank=2)
    assert n > 0 and any(isinstance(m, LoRALinear) for m in sam.image_encoder.modules())
    trainable = [p for p in sam.image_encoder.parameters() if p.requires_grad]
    assert trainable and all(p.shape[0] == 2 or p.shape[1] == 2 for p in trainable)
    with torch.no_grad():
        torch.testing.assert_close(sam.image_encoder(x), before)
        for m in sam.image_encoder.modules():
            if isinstance(m, LoRALinear):
                m.up.weight.normal_()
        adapted = sam.image_encoder(x)
    merge_lora(sam.image_encoder)
    assert not any(isinstance(m, LoRALinear) for m in sam.image_encoder.modules())
    with torch.no_grad():
        torch.testing.assert_close(sam.image_encoder(x), adapted, atol=1e-4, rtol=1e-4)


def test_finetune_cli_frozen_encoder_then_lora(tmp_path, hela_frame):
    image, labels = hela_frame
    for i, (y, x) in enumerate([(0, 0), (200, 300)]):
        tifffile.imwrite(tmp_path / f"img{i}.tif", image[y:y + 96, x:x + 96])
        tifffile.imwrite(tmp_path / f"lab{i}.tif", labels[y:y + 96, x:x + 96])
    common = ["--images", str(tmp_path / "img*.tif"), "--labels", str(tmp_path / "lab*.tif"),
              "--from-scratch", "samzoo_tiny", "--input-size", "64", "--steps", "2", "--batch-size", "1",
              "--checkpoint-every", "1", "--val-images", str(tmp_path / "img1.tif"),
              "--val-labels", str(tmp_path / "lab1.tif")]
    assert main(["finetune", "-o", str(tmp_path / "frozen"), "--freeze-encoder", "--embedding-pool", "3"] + common) == 0
    assert main(["finetune", "-o", str(tmp_path / "lora"), "--lora-rank", "2"] + common) == 0
    for run in ("frozen", "lora"):
        model = load_model(tmp_path / run / "model.safetensors")
        assert model.input_size == 64 and (tmp_path / run / "last.pt").exists()


def test_finetune_cli_packages_the_result(tmp_path, hela_frame, capsys):
    """--package: the finetuned model comes out as bioimage.io packages that pass bioimageio test."""
    image, labels = hela_frame
    for i, (y, x) in enumerate([(0, 0), (200, 300)]):  # the first crop's centre holds no whole nucleus
        tifffile.imwrite(tmp_path / f"img{i}.tif", image[y:y + 96, x:x + 96])
        tifffile.imwrite(tmp_path / f"lab{i}.tif", labels[y:y + 96, x:x + 96])
    assert main(["finetune", "--images", str(tmp_path / "img*.tif"), "--labels", str(tmp_path / "lab*.tif"),
                 "--from-scratch", "samzoo_tiny", "--input-size", "64", "--steps", "1", "--batch-size", "1",
                 "-o", str(tmp_path / "run"), "--package"]) == 0
    out = capsys.readouterr().out
    zips = sorted(p.name for p in (tmp_path / "run" / "packages").glob("*.bioimageio.zip"))
    assert zips == ["samzoo_tiny_finetuned_ais.bioimageio.zip", "samzoo_tiny_finetuned_prompt.bioimageio.zip"], zips
    assert out.count("bioimageio test: passed") == 2, out


def test_finetune_function_trains_decoders_on_frozen_encoder(tmp_path):
    """samzoo.training.finetune: decoders learn (AIS loss on the data falls), the encoder is untouched,
    and the result is a model loaded back from its file (own weights hash: embeddings are not reused)."""
    from samzoo.models.model import ModelConfig, SamzooModel
    from samzoo.tracking import simulate_movie
    from samzoo.training import finetune
    from samzoo.training.data import pairs_from_arrays
    from samzoo.training.losses import ais_loss


    torch.manual_seed(0)
    start = SamzooModel(ModelConfig("samzoo_tiny", 64, {"image_skip": True}, name="start")).eval()
    start.weights_hash = "sha256:start"
    movie = simulate_movie(n_frames=3, shape=(64, 64), n_cells=3, radius=7, seed=2)
    pairs = pairs_from_arrays(movie.images, movie.masks)

    x = torch.stack([torch.from_numpy(p.image).expand(3, -1, -1) * 255.0 for p in pairs])  # as crops are
    targets = torch.stack([torch.from_numpy(p.targets) for p in pairs])

    def loss(model):
        with torch.no_grad():
            normalized = model.preprocess(x)
            return ais_loss(model.ais_decoder(model.sam.image_encoder(normalized), normalized), targets).item()

    encoder_before = {k: v.clone() for k, v in start.sam.image_encoder.state_dict().items()}
    before = loss(start)
    trained = finetune(start, movie.images, movie.masks, steps=30, batch_size=2, lr=3e-3, embedding_pool=6,
                       run_dir=tmp_path / "run", checkpoint_every=30)
    assert trained is not start and not trained.training
    assert trained.weights_hash.startswith("sha256:") and trained.weights_hash != start.weights_hash
    assert (tmp_path / "run" / "model.safetensors").exists() and (tmp_path / "run" / "last.pt").exists()
    for k, v in trained.sam.image_encoder.state_dict().items():  # saved in float16: equal to rounding
        torch.testing.assert_close(v.float(), encoder_before[k].float(), atol=1e-2, rtol=1e-2)
    assert loss(trained) < 0.8 * before, (loss(trained), before)
