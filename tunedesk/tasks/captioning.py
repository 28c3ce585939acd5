"""Product-image captioning at inference: load a captioner, check an upload, caption it (whole or streamed).

A captioner is an image encoder feeding a text decoder, loaded through one code path,
``transformers.AutoModelForImageTextToText`` + ``AutoTokenizer`` (+ ``AutoImageProcessor`` when the
model ships one):
- a run directory of ``tunedesk captioning train`` (its manifest says ``"kind": "captioning"``; the
  weights are in ``model/``): a ``VisionEncoderDecoderModel`` (ViT encoder, GPT-2 decoder with
  cross-attention) trained from scratch on fashion-mnist, with its word-level tokenizer;
- a hub id or a transformers directory: ``nlpconnect/vit-gpt2-image-captioning`` is the same
  architecture (ViT-base + GPT-2, 224x224 RGB through its ``ViTImageProcessor``);
  ``Salesforce/blip-image-captioning-base`` is a ``BlipForConditionalGeneration`` (a ViT and a BERT-style
  decoder trained together, with its ``BlipImageProcessor`` at 384x384) that the same Auto classes load
  and whose ``generate(pixel_values=...)`` captions unconditionally.

Decisions:
- **What our models see.** Photos as photographed: dark product on a white background, grayscale,
  28x28, values mapped to [-1, 1]. Fashion-mnist stores its photos negated (a pixel is *ink*, 0 = white
  background, see ``data.captioning``), so ink arrays are negated back first, exactly as
  ``data.captioning.open_image`` does: ``caption_ink(array)`` and ``caption(open_image(...))`` give the
  same caption. Uploaded product photos are dark-on-white already and are never negated.
- **Framing an upload like fashion-mnist.** Fashion-mnist trimmed each product to its bounding box, scaled
  the longest side to 28 px and centred it. An upload is flattened onto white (transparency), made
  grayscale, trimmed to the pixels that differ from its border colour by more than ``TRIM_TOLERANCE``,
  padded to a square with that border colour, and resized to 28x28 (Lanczos). A grayscale image that is
  already 28x28 is taken as framed and used as it is. Photos that are not products on a plain background
  are out of domain: the model still names one of the ten fashion-mnist classes.
- A model that ships an image processor (the hub models) gets RGB images through it instead.
- **Uploads are checked by content**: PNG, JPEG, WebP or GIF by their magic bytes (the file name is never
  trusted), the decoder must agree, and the byte size and the pixel count are limited *before* decoding,
  so a decompression bomb is refused from its header. GIF and animated WebP: the first frame.
- Greedy decoding by default (``num_beams=1``); beam search on request. ``stream_caption`` runs
  ``generate`` in a thread with ``TextIteratorStreamer`` and yields text pieces as they are decoded
  (greedy only: transformers streams a single sequence); ``astream_caption`` is the same for asyncio.
- ``product_noun`` maps a caption to a fashion-mnist class by its first product noun; eval's noun accuracy
  and the training recipe's validation use it.

Heavy imports (torch, transformers, PIL) happen inside the functions that need them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tunedesk.errors import ModelNotFoundError, TunedeskError
from tunedesk.models import read_manifest

if TYPE_CHECKING:
    from PIL import Image

IMAGE_SIZE = 28  # fashion-mnist geometry: what a from-scratch captioner reads
TRIM_TOLERANCE = 25  # grey levels from the border colour that count as product when trimming an upload
MODEL_SUBDIR = "model"
RUN_KIND = "captioning"
MAX_NEW_TOKENS = 32

# --- upload checks -------------------------------------------------------------------------------------

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_UPLOAD_PIXELS = 25_000_000  # 5000 x 5000
IMAGE_TYPES: dict[str, str] = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


class UploadError(TunedeskError):
    """An uploaded file is not an image we accept; the message says why, for the person who sent it."""


def sniff_image_type(data: bytes) -> str | None:
    """``PNG``, ``JPEG``, ``WEBP`` or ``GIF`` from the file's first bytes; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    return None


def check_upload(
    data: bytes, name: str = "upload", max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_UPLOAD_PIXELS
) -> Image.Image:
    """The decoded image of an upload, or ``UploadError`` naming ``name`` and what is wrong with it."""
    import io

    from PIL import Image, UnidentifiedImageError

    if not data:
        raise UploadError(f"{name}: the file is empty")
    if len(data) > max_bytes:
        raise UploadError(f"{name}: {len(data) / 1e6:.1f} MB is over the {max_bytes / 1e6:.1f} MB limit for images")
    kind = sniff_image_type(data)
    if kind is None:
        raise UploadError(f"{name}: not a PNG, JPEG, WebP or GIF image (judged by its content, not its name)")
    try:
        image = Image.open(io.BytesIO(data), formats=[kind])
        width, height = image.size  # from the header: nothing decoded yet
        if width * height > max_pixels:
            raise UploadError(
                f"{name}: {width}x{height} is {width * height:,} pixels, over the {max_pixels:,} pixel limit"
            )
        image.seek(0)  # the first frame of an animation
        image.load()
    except UploadError:
        raise
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UploadError(f"{name}: looks like {kind} but cannot be decoded ({exc})") from None
    return image


# --- what the model reads -------------------------------------------------------------------------------


def frame_photo(image: Image.Image) -> np.ndarray:
    """A photo (dark product on light background, any size and mode) as fashion-mnist frames it: uint8 28x28."""
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    gray = image.convert("L")
    if gray.size == (IMAGE_SIZE, IMAGE_SIZE):
        return np.asarray(gray, dtype=np.uint8).copy()
    pixels = np.asarray(gray, dtype=np.int16)
    border = int(np.median(np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])))
    product = np.abs(pixels - border) > TRIM_TOLERANCE
    if product.any():
        rows, cols = np.flatnonzero(product.any(axis=1)), np.flatnonzero(product.any(axis=0))
        gray = gray.crop((int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1))
    side = max(gray.size)
    square = Image.new("L", (side, side), border)
    square.paste(gray, ((side - gray.width) // 2, (side - gray.height) // 2))
    resized = square.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8).copy()


def ink_to_photo(ink: np.ndarray) -> np.ndarray:
    """A fashion-mnist array (ink, 0 = background) as photographed (dark on white), like ``open_image``."""
    array = np.asarray(ink)
    if array.shape[-2:] != (IMAGE_SIZE, IMAGE_SIZE) or array.dtype != np.uint8:
        raise ValueError(f"expected uint8 fashion-mnist arrays of 28x28, got {array.dtype} {array.shape}")
    return np.subtract(255, array, dtype=np.uint8)


def photo_tensor(photos: np.ndarray) -> Any:
    """``N x 28 x 28`` uint8 photos -> the float tensor ``N x 1 x 28 x 28`` in [-1, 1] our models read."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(photos, dtype=np.float32)).unsqueeze(1).div_(127.5).sub_(1.0)


# --- loading ---------------------------------------------------------------------------------------------


@dataclass
class Captioner:
    """A loaded captioning model; ``processor`` is None for our 28x28 grayscale models."""

    model: Any
    tokenizer: Any
    processor: Any
    device: str
    description: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)  # generate is not re-entrant on one model

    @property
    def grayscale(self) -> bool:
        return self.processor is None

    def pixel_values(self, images: Sequence[Image.Image]) -> Any:
        """The model's input tensor for photos (PIL, as photographed)."""
        if self.processor is None:
            return photo_tensor(np.stack([frame_photo(image) for image in images])).to(self.device)
        rgb = [image.convert("RGB") for image in images]
        return self.processor(images=rgb, return_tensors="pt").pixel_values.to(self.device)


def model_directory(ref: str | Path) -> tuple[str, dict[str, Any] | None]:
    """Where the transformers files of ``ref`` are (a run's ``model/``, a directory, or a hub id), and its manifest."""
    path = Path(ref).expanduser()
    if path.is_dir():
        manifest = read_manifest(path)
        if manifest is not None:
            if manifest.get("kind") != RUN_KIND:
                raise ModelNotFoundError(f"{path} is a '{manifest.get('kind')}' run, not a captioning run")
            return str(path / str(manifest.get("model") or MODEL_SUBDIR)), manifest
        if (path / "config.json").is_file():
            return str(path), None
        if (path / MODEL_SUBDIR / "config.json").is_file():
            raise ModelNotFoundError(f"{path} has no manifest: the run is incomplete (still training or interrupted)")
        raise ModelNotFoundError(f"{path} holds neither a captioning run (manifest) nor a model (config.json)")
    if str(ref).startswith((".", "/", "~")) or str(ref).count("/") != 1:
        raise ModelNotFoundError(
            f"{ref}: no such directory, and not a hub id like nlpconnect/vit-gpt2-image-captioning"
        )
    return str(ref), None


def load_captioner(ref: str | Path, device: str = "auto") -> Captioner:
    """A run directory of ``tunedesk captioning train``, a transformers directory or a hub id, ready to caption."""
    import torch
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

    where, manifest = model_directory(ref)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        config = AutoConfig.from_pretrained(where)
        model: Any = AutoModelForImageTextToText.from_pretrained(where)
        model = model.to(device).eval()
        tokenizer = AutoTokenizer.from_pretrained(where)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelNotFoundError(f"{ref}: cannot load a captioning model ({exc})") from None
    processor = None
    if Path(where, "preprocessor_config.json").is_file() or not Path(where).is_dir():
        processor = AutoImageProcessor.from_pretrained(where)
    elif _channels(config) != 1:
        raise ModelNotFoundError(f"{where}: no preprocessor_config.json, and the encoder is not 1-channel 28x28")
    description = {"model": str(ref), "path": where, "type": config.model_type, "device": device}
    if manifest is not None:
        description |= {"run": manifest.get("name"), "data": manifest.get("data"), "metrics": manifest.get("metrics")}
    return Captioner(model, tokenizer, processor, device, description)


def _channels(config: Any) -> int:
    encoder = getattr(config, "encoder", None) or getattr(config, "vision_config", None)
    return int(getattr(encoder, "num_channels", 3))


# --- captioning -----------------------------------------------------------------------------------------


def caption(captioner: Captioner, image: Image.Image, num_beams: int = 1, max_new_tokens: int = MAX_NEW_TOKENS) -> str:
    """One caption for a photo (PIL image of any size and mode, as photographed)."""
    return caption_batch(captioner, [image], num_beams, max_new_tokens)[0]


def caption_batch(
    captioner: Captioner, images: Sequence[Image.Image], num_beams: int = 1, max_new_tokens: int = MAX_NEW_TOKENS
) -> list[str]:
    """Captions for several photos at once."""
    return _generate(captioner, captioner.pixel_values(images), num_beams, max_new_tokens)


def caption_ink(
    captioner: Captioner, ink: np.ndarray, num_beams: int = 1, max_new_tokens: int = MAX_NEW_TOKENS
) -> list[str]:
    """Captions for fashion-mnist arrays (``N x 28 x 28`` or one ``28 x 28``, ink as stored)."""
    from PIL import Image

    photos = ink_to_photo(ink).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    if captioner.grayscale:
        return _generate(captioner, photo_tensor(photos).to(captioner.device), num_beams, max_new_tokens)
    return caption_batch(captioner, [Image.fromarray(photo) for photo in photos], num_beams, max_new_tokens)


def _generate(captioner: Captioner, pixel_values: Any, num_beams: int, max_new_tokens: int) -> list[str]:
    import torch

    with captioner.lock, torch.inference_mode():
        output = captioner.model.generate(
            pixel_values=pixel_values, num_beams=num_beams, max_new_tokens=max_new_tokens, do_sample=False
        )
    texts: list[str] = captioner.tokenizer.batch_decode(output, skip_special_tokens=True)
    return [text.strip() for text in texts]


def stream_caption(captioner: Captioner, image: Image.Image, max_new_tokens: int = MAX_NEW_TOKENS) -> Iterator[str]:
    """The greedy caption of a photo, in pieces as they are decoded (for the chat UI)."""
    import torch
    from transformers import TextIteratorStreamer

    pixel_values = captioner.pixel_values([image])
    streamer = TextIteratorStreamer(captioner.tokenizer, skip_prompt=False, skip_special_tokens=True, timeout=120)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with captioner.lock, torch.inference_mode():
                captioner.model.generate(
                    pixel_values=pixel_values, max_new_tokens=max_new_tokens, do_sample=False, streamer=streamer
                )
        except BaseException as exc:  # handed to the reader: a thread's exception would vanish
            failure.append(exc)
            streamer.end()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    first = True
    for piece in streamer:
        piece = piece.lstrip() if first else piece
        if piece:
            first = False
            yield piece
    worker.join()
    if failure:
        raise failure[0]


async def astream_caption(
    captioner: Captioner, image: Image.Image, max_new_tokens: int = MAX_NEW_TOKENS
) -> AsyncIterator[str]:
    """``stream_caption`` for an event loop (the chat UI): each piece is awaited off the loop's thread."""
    import asyncio

    pieces = stream_caption(captioner, image, max_new_tokens)
    while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
        yield piece


# --- the product noun of a caption ----------------------------------------------------------------------

FASHION_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
# The nouns data.captioning.describe writes (top / T-shirt, trousers, ...) and common synonyms a hub captioner
# uses, singular and plural. "shoe" and "boot" alone are left out: they could be any of the footwear classes.
PRODUCT_NOUNS: dict[str, int] = {
    **dict.fromkeys(("top", "tops", "t-shirt", "t-shirts", "tshirt", "tee", "tank", "blouse"), 0),
    **dict.fromkeys(("trousers", "trouser", "pants", "jeans", "leggings"), 1),
    **dict.fromkeys(("pullover", "pullovers", "sweater", "sweaters", "jumper", "hoodie", "sweatshirt"), 2),
    **dict.fromkeys(("dress", "dresses", "gown"), 3),
    **dict.fromkeys(("coat", "coats", "jacket", "jackets", "parka"), 4),
    **dict.fromkeys(("sandal", "sandals", "heels", "flip-flops"), 5),
    **dict.fromkeys(("shirt", "shirts"), 6),
    **dict.fromkeys(("sneaker", "sneakers", "trainer", "trainers"), 7),
    **dict.fromkeys(("bag", "bags", "handbag", "handbags", "purse", "backpack", "tote"), 8),
    **dict.fromkeys(("ankle boot", "ankle boots", "boots"), 9),
}
_WORDS = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")  # hyphenated words stay whole: "high-top" is not "top"


def product_noun(text: str) -> int | None:
    """The fashion-mnist class of the first product noun in a caption, or None when it names none.

    The first one is the product: later ones are details ("bag with a top handle")."""
    words = _WORDS.findall(text.lower())
    for index, word in enumerate(words):
        pair = f"{word} {words[index + 1]}" if index + 1 < len(words) else ""
        if pair in PRODUCT_NOUNS:
            return PRODUCT_NOUNS[pair]
        if word in PRODUCT_NOUNS:
            return PRODUCT_NOUNS[word]
    return None
