"""Product-image captioning: a tiny ViT+GPT-2 trained from scratch on fashion-mnist photos -> saved -> loaded ->
captioning PIL images and fashion-mnist arrays (whole and streamed); the hub-style code path (RGB image processor);
upload checks; CIDEr-D and noun accuracy on hand-computed cases; the eval suite end to end."""

from __future__ import annotations

import asyncio
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from data.captioning import FASHION_MNIST_DIR, describe, load_fashion_mnist, open_image
from data.schema import CaptionExample
from eval.tasks import TaskSuite
from eval.tasks import captioning as task_eval
from finetune import captioning as recipe
from tunedesk.errors import ConfigError, ModelNotFoundError
from tunedesk.tasks import captioning as infer

ROOT = Path(__file__).resolve().parents[1]
needs_fashion_mnist = pytest.mark.skipif(
    not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed (sudo apt-get install dataset-fashion-mnist)",
)
TINY: dict[str, Any] = {
    "train_images": 64,
    "validation_images": 16,
    "eval_images": 8,
    "patch_size": 7,
    "hidden_size": 32,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "heads": 2,
    "batch_size": 16,
    "max_steps": 40,
    "learning_rate": 3e-3,
    "warmup_ratio": 0.1,
}


def _png(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("needs Debian's dataset-fashion-mnist")
    output = tmp_path_factory.mktemp("captioning") / "run"
    recipe.train(recipe.CaptionConfig.model_validate({"output": output, **TINY}), progress=False, log=lambda line: None)
    return output


# --- training, saving, loading -------------------------------------------------------------------------


@needs_fashion_mnist
def test_training_lowers_the_loss_and_writes_a_complete_run(tiny_run: Path) -> None:
    history = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert len(history) == 10  # 40 steps of 16 over 64 photos: 10 epochs
    assert history[-1]["validation_loss"] < 0.8 * history[0]["validation_loss"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    manifest = json.loads((tiny_run / "tunedesk-manifest.json").read_text())
    assert manifest["kind"] == "captioning" and manifest["init"] == "scratch" and manifest["steps"] == 40
    assert manifest["data"]["train"]["images"] == 64 and manifest["data"]["train"]["split"] == "train"
    assert manifest["data"]["train"]["sha256"] != manifest["data"]["validation"]["sha256"]
    assert "validation_noun_accuracy" in manifest["metrics"]
    assert recipe.CaptionConfig.model_validate(yaml.safe_load((tiny_run / "config.yaml").read_text())).max_steps == 40


@needs_fashion_mnist
def test_training_and_validation_photos_are_disjoint_and_from_train_only() -> None:
    config = recipe.CaptionConfig.model_validate({"train_images": 300, "validation_images": 100, "seed": 3})
    train, validation = recipe.select_photos(config, progress=False)
    assert not set(train.indices.tolist()) & set(validation.indices.tolist())
    images, labels = load_fashion_mnist("train")
    assert train.captions[0] == describe(images[train.indices[0]], int(labels[train.indices[0]]))


@needs_fashion_mnist
def test_the_word_tokenizer_loads_with_autotokenizer_and_round_trips_captions(tiny_run: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_run / "model")
    caption = "Product photo of a dark-coloured, plain, short-sleeved T-shirt."
    ids = tokenizer(caption, add_special_tokens=False).input_ids
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids) == caption
    assert tokenizer.convert_ids_to_tokens(ids)[-2:] == ["▁T-shirt", "."]


@needs_fashion_mnist
def test_a_fashion_array_and_its_photo_get_the_same_caption_and_streaming_matches(tiny_run: Path) -> None:
    captioner = infer.load_captioner(tiny_run)
    ink, _ = load_fashion_mnist("t10k")
    from_arrays = infer.caption_ink(captioner, ink[:3])
    assert len(from_arrays) == 3 and all(isinstance(text, str) for text in from_arrays)
    photo = open_image(CaptionExample(id="x", image="fashion-mnist:t10k:1", caption="c"), ROOT)
    assert infer.caption(captioner, photo) == from_arrays[1]
    assert "".join(infer.stream_caption(captioner, photo)) == from_arrays[1]

    async def streamed() -> str:
        return "".join([piece async for piece in infer.astream_caption(captioner, photo)])

    assert asyncio.run(streamed()) == from_arrays[1]
    assert isinstance(infer.caption(captioner, photo, num_beams=3), str)
    big = Image.new("RGBA", (300, 200), (0, 0, 0, 0))  # transparent background, any size and mode
    big.paste((40, 60, 90, 255), (100, 20, 200, 180))
    assert isinstance(infer.caption(captioner, big), str)


def test_an_upload_is_framed_like_fashion_mnist() -> None:
    photo = Image.new("RGB", (400, 300), "white")
    photo.paste((30, 30, 30), (150, 50, 250, 250))  # a dark 100 x 200 product, off-centre
    framed = infer.frame_photo(photo)
    assert framed.shape == (28, 28) and framed.dtype == np.uint8
    dark_rows = np.flatnonzero((framed < 128).any(axis=1))
    dark_cols = np.flatnonzero((framed < 128).any(axis=0))
    assert (dark_rows[0], dark_rows[-1]) == (0, 27)  # trimmed: the longest side spans the frame
    assert 12 <= len(dark_cols) <= 16 and abs((dark_cols[0] + dark_cols[-1]) / 2 - 13.5) <= 1  # centred
    assert framed[0, 0] == 255 and framed[27, 0] == 255
    ink = np.zeros((28, 28), np.uint8)
    ink[5:20, 8:14] = 200
    assert np.array_equal(infer.frame_photo(Image.fromarray(infer.ink_to_photo(ink))), 255 - ink)


def test_a_hub_style_model_with_an_image_processor_loads_captions_and_fine_tunes(tmp_path: Path) -> None:
    """The nlpconnect/vit-gpt2-image-captioning code path: RGB through a ViTImageProcessor, GPT-2 tokens."""
    from transformers import (
        GPT2Config,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
    )

    tokenizer = recipe.train_tokenizer(["A dark coat.", "A light bag with a top handle."])
    encoder = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64)  # fmt: skip
    decoder = GPT2Config(vocab_size=len(tokenizer), n_positions=40, n_embd=32, n_layer=1, n_head=2)
    model = VisionEncoderDecoderModel(config=VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder))
    recipe._set_special_tokens(model, tokenizer)
    hub_dir = tmp_path / "vit-gpt2"
    model.save_pretrained(hub_dir)
    tokenizer.save_pretrained(hub_dir)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(hub_dir)

    captioner = infer.load_captioner(hub_dir)
    assert captioner.processor is not None and captioner.pixel_values([Image.new("L", (50, 70))]).shape == (
        1,
        3,
        32,
        32,
    )
    assert isinstance(infer.caption(captioner, Image.new("RGB", (64, 48), "red")), str)
    if (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        config = recipe.CaptionConfig.model_validate(
            {**TINY, "output": tmp_path / "tuned", "model": str(hub_dir), "max_steps": 2}
        )
        result = recipe.train(config, progress=False, log=lambda line: None)
        assert result.manifest["init"] == str(hub_dir)
        assert (tmp_path / "tuned" / "model" / "preprocessor_config.json").is_file()
        assert infer.load_captioner(tmp_path / "tuned").processor is not None


def test_models_that_are_not_captioners_are_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "tunedesk-manifest.json").write_text('{"kind": "lora"}')
    with pytest.raises(ModelNotFoundError, match="not a captioning run"):
        infer.load_captioner(tmp_path)
    with pytest.raises(ModelNotFoundError, match="no such directory"):
        infer.load_captioner("./runs/nowhere")


# --- config --------------------------------------------------------------------------------------------


def test_the_shipped_config_loads_and_bad_configs_name_file_and_key(tmp_path: Path) -> None:
    shipped = ROOT / "finetune" / "configs" / "captioning-fashion.yaml"
    assert shipped.read_text().startswith(
        "# tunedesk captioning train --config finetune/configs/captioning-fashion.yaml"
    )
    config = recipe.CaptionConfig.from_yaml(shipped, epochs=1)
    assert config.epochs == 1 and config.model is None
    bad = tmp_path / "bad.yaml"
    bad.write_text("train_imags: 10\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: train_imags: Extra inputs"):
        recipe.CaptionConfig.from_yaml(bad)
    bad.write_text("train_images: 59500\nvalidation_images: 1000\n")
    with pytest.raises(ConfigError, match="t10k is for evaluation only"):
        recipe.CaptionConfig.from_yaml(bad)
    bad.write_text("patch_size: 5\n")
    with pytest.raises(ConfigError, match="patch_size 5 does not divide"):
        recipe.CaptionConfig.from_yaml(bad)
    result = CliRunner().invoke(recipe.app, ["train", "--config", str(bad)])
    assert result.exit_code == 1 and "error:" in result.output and "patch_size" in result.output


# --- uploads -------------------------------------------------------------------------------------------


def test_uploads_are_checked_by_content_and_size() -> None:
    with pytest.raises(infer.UploadError, match=r"photo\.png: not a PNG, JPEG, WebP or GIF image"):
        infer.check_upload(b"just some text, named like a picture\n", "photo.png")
    with pytest.raises(infer.UploadError, match="empty"):
        infer.check_upload(b"", "empty.png")
    image = Image.new("RGB", (300, 200), "white")
    with pytest.raises(infer.UploadError, match=r"big\.png: 300x200 is 60,000 pixels, over the 10,000 pixel limit"):
        infer.check_upload(_png(image), "big.png", max_pixels=10_000)
    with pytest.raises(infer.UploadError, match="MB limit"):
        infer.check_upload(_png(image), "heavy.png", max_bytes=100)
    with pytest.raises(infer.UploadError, match="looks like PNG but cannot be decoded"):
        infer.check_upload(_png(image)[:60], "cut.png")
    for fmt in ("PNG", "JPEG", "GIF", "WEBP"):
        data = _png(image, fmt)
        assert infer.sniff_image_type(data) == fmt
        assert infer.check_upload(data, f"ok.{fmt.lower()}").size == (300, 200)
    gif_named_png = infer.check_upload(_png(image, "GIF"), "really-a-gif.png")
    assert gif_named_png.format == "GIF"


# --- metrics -------------------------------------------------------------------------------------------


def test_cider_d_on_hand_computed_cases() -> None:
    # Two images, references "a b" and "a c": idf(a) = log 2 - log 2 = 0, idf(b) = idf("a b") = log 2.
    # "a b" for the first: cosine 1 for 1- and 2-grams, none for 3-, 4-grams: 10 * (1 + 1 + 0 + 0) / 4 = 5.
    # For the second it shares only "a", whose weight is 0.
    score = task_eval.cider_d(["a b", "a b"], [["a b"], ["a c"]])
    assert score.per_example == pytest.approx([5.0, 0.0]) and score.value == pytest.approx(2.5)
    # Clipping: "b b" counts b twice, the reference once: min(2w, w) * w / (2w * w) = 0.5 -> 10 * 0.5 / 4.
    assert task_eval.cider_d(["b b", "x"], [["a b"], ["a c"]]).per_example[0] == pytest.approx(1.25)
    # Length penalty: "a b c" vs "a b": cosines 1/sqrt2 for 1- and 2-grams, one word longer: exp(-1 / 72).
    expected = 10 * (2 / math.sqrt(2)) / 4 * math.exp(-1 / 72)
    assert task_eval.cider_d(["a b c", "x"], [["A b."], ["a c"]]).per_example[0] == pytest.approx(expected)
    # Several references: the mean over them; case and punctuation do not count.
    two = task_eval.cider_d(["a b", "x"], [["a b", "a c"], ["a c"]])
    assert two.per_example == pytest.approx([(5.0 + 0.0) / 2, 0.0])  # idf(c) = 0 now: "a c" is in both


def test_noun_accuracy_on_hand_made_captions() -> None:
    captions = [
        "Bag: dark, plain, with a top handle.",  # bag, not the "top" of the handle
        "A mid-grey, high-top sneaker.",  # "high-top" is not a top
        "Short-sleeved T-shirt, shown on a white background.",
        "A pair of slim trousers.",
        "Product photo of a dark, flat ankle boot.",
        "A plain shirt.",  # true class: T-shirt/top -> wrong
        "A blurry photo.",  # no product noun -> wrong
    ]
    truth = [8, 7, 0, 1, 9, 0, 3]
    score, details = task_eval.noun_scores(captions, truth)
    assert score.per_example == [1, 1, 1, 1, 1, 0, 0] and score.value == pytest.approx(5 / 7)
    assert details["matrix"][0][6] == 1 and details["matrix"][3][10] == 1 and details["columns"][10] == "(none)"
    assert details["per_class"]["T-shirt/top"] == 0.5 and details["per_class"]["Sandal"] is None


@needs_fashion_mnist
def test_every_caption_describe_writes_names_its_class() -> None:
    images, labels = load_fashion_mnist("t10k")
    for index in range(0, 10_000, 25):
        assert infer.product_noun(describe(images[index], int(labels[index]))) == int(labels[index])


# --- eval, predict -------------------------------------------------------------------------------------


@needs_fashion_mnist
def test_the_eval_suite_runs_end_to_end(tiny_run: Path, tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "eval" / "suites" / "captioning.yaml").read_text())
    assert (ROOT / "eval" / "suites" / "captioning.yaml").read_text().startswith("# tunedesk eval run")
    raw["dataset"] = {"path": str(ROOT / "data/samples/captioning/fashion_captions.jsonl"), "limit": 30}
    raw["models"][0]["model"] = str(tiny_run)
    raw["models"][1]["settings"] = {"train_images": 2000}
    raw["models"].append({"name": "missing", "kind": "captioner", "model": str(tmp_path / "none"), "optional": True})
    suite = TaskSuite.model_validate(raw)
    calls: list[tuple[str, int]] = []
    run = task_eval.evaluate(suite, lambda label, total: lambda n: calls.append((label, n)))
    assert [r.name for r in run.results] == ["captioning-fashion", "nearest-neighbour"]
    assert "missing" in run.skipped and len(run.examples) == 30
    assert run.examples[0].input.startswith("fashion-mnist:t10k:")
    for result in run.results:
        assert set(result.scores) == {"bleu", "rougeL", "cider", "noun_accuracy"}
        assert len(result.predictions) == 30 and len(result.scores["cider"].per_example) == 30
        assert result.summary()["metrics"]["noun_accuracy"]["direction"] == "higher"
        assert sum(sum(row) for row in result.details["noun_confusion"]["matrix"]) == 30
    neighbour = run.results[1]
    assert neighbour.scores["noun_accuracy"].value > 0.5  # pixel-space neighbours mostly share the class
    assert sum(n for label, n in calls if label == "nearest-neighbour") == 30
    assert "data:image/png;base64" in run.sections[0] and "Example captions" in run.sections[1]


@needs_fashion_mnist
def test_predict_writes_captions_and_refuses_a_fake_image(tiny_run: Path, tmp_path: Path) -> None:
    captions = tmp_path / "some.jsonl"
    captions.write_text(
        "".join(
            json.dumps({"id": f"x{i}", "image": f"fashion-mnist:t10k:{i}", "caption": "c"}) + "\n" for i in range(3)
        )
    )
    (tmp_path / "shirt.png").write_bytes(_png(Image.new("RGB", (90, 120), "white")))
    out = tmp_path / "out.jsonl"
    runner = CliRunner()
    result = runner.invoke(
        recipe.app, ["predict", str(tiny_run), str(captions), str(tmp_path / "shirt.png"), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["image"] for row in rows][:3] == [
        "fashion-mnist:t10k:0",
        "fashion-mnist:t10k:1",
        "fashion-mnist:t10k:2",
    ]
    assert len(rows) == 4 and all(isinstance(row["caption"], str) for row in rows)
    (tmp_path / "fake.png").write_text("not an image")
    result = runner.invoke(recipe.app, ["predict", str(tiny_run), str(tmp_path / "fake.png"), "-o", str(out)])
    assert result.exit_code == 1 and "not a PNG, JPEG, WebP or GIF" in result.output
