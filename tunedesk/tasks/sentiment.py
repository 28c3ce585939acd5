"""Social-media sentiment: the text normalisation shared by training and prediction, and the classifiers.

A post goes through ``normalize`` before any model sees it, at training and at prediction time alike:
the run directory stores the ``Normalization`` it was trained with and every loader applies that one,
so the two cannot drift.

Decisions:
- Normalisation follows the TweetEval / cardiffnlp convention the public Twitter models were trained
  on: a user mention becomes ``@user`` and a link ``http``; both carry no sentiment and would otherwise
  fill the vocabulary with one-off tokens.
- A hashtag keeps a ``#`` marker and is split into words on camelCase (``#WorstServiceEver`` ->
  ``#worst service ever``): the words are what carries sentiment, and the camelCase capitals are word
  boundaries, not emphasis, so they are lowercased. An all-capitals tag (``#FAIL``) is kept as written.
- Emojis become their English names as plain words (``😒`` -> ``unamused face``, the ``emoji``
  package's names with ``_`` read as spaces), which any English tokenizer already splits into known
  words; the names are the emoji's sentiment signal for a model that has never seen the glyph.
- Elongations are cut to two letters (``soooo`` -> ``soo``, ``greaaat`` -> ``greaat``): every
  spelling of one emphasis becomes one token sequence, and two letters keep it apart from the plain word.
- Casing: ``lowercase`` follows the model when it is left unset. The offline default,
  all-MiniLM-L6-v2, and distilbert-base-uncased are uncased (their tokenizers lowercase anyway), so
  ALL CAPS cannot carry signal to them; cardiffnlp/twitter-roberta-base-sentiment-latest is cased, and
  keeping the case lets it read shouting. The TF-IDF baseline lowercases, as scikit-learn does by default.
- Classifiers are a transformers ``AutoModelForSequenceClassification`` (PyTorch) or its ONNX export
  run by onnxruntime on CPU, behind one ``predict(texts) -> [(label, {label: probability})]``. Batches
  are built from texts sorted by length, so padding stays short, and answers come back in input order.
- Heavy libraries (torch, transformers, onnxruntime, scikit-learn) are imported inside the functions
  that use them: the chat UI imports this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from tunedesk.errors import ModelNotFoundError
from tunedesk.models import MANIFEST

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")  # the cardiffnlp/TweetEval order: ids 0, 1, 2
MODEL_DIR = "model"  # transformers weights and tokenizer inside a run directory
ONNX_FILE = "model.onnx"
RUN_KIND = "sentiment"
ONNX_KIND = "sentiment-onnx"

Prediction = tuple[str, dict[str, float]]
Backend = Literal["auto", "torch", "onnx"]

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w@])@\w+")
_HASHTAG = re.compile(r"(?<![\w#&])#(\w+)")
_CAMEL_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_ELONGATION = re.compile(r"([^\W\d_])\1{2,}")
_SPACES = re.compile(r"\s+")


class Normalization(BaseModel):
    """How posts are normalised; stored in every run directory and applied at prediction time."""

    model_config = ConfigDict(extra="forbid")

    mentions: bool = True  # @handle -> @user
    urls: bool = True  # https://t.co/x -> http
    hashtags: bool = True  # #WorstServiceEver -> #worst service ever
    emojis: bool = True  # 😒 -> unamused face
    elongations: bool = True  # soooo -> soo
    lowercase: bool | None = None  # None: decided by the model (lowercase for uncased tokenizers)

    def resolved(self, lowercase: bool) -> Normalization:
        """This normalisation with ``lowercase`` set where it was left to the model."""
        return self if self.lowercase is not None else self.model_copy(update={"lowercase": lowercase})


def split_hashtag(tag: str) -> str:
    """``WorstServiceEver`` -> ``worst service ever``; a tag that is all capitals, or not ASCII, stays whole."""
    if tag.isupper() or not tag.isascii():
        return tag
    parts = _CAMEL_PART.findall(tag.replace("_", " "))
    return " ".join(part.lower() for part in parts) if parts else tag


def _emoji_name(chars: str, data: dict[str, Any]) -> str:
    return f" {data['en'].strip(':').replace('_', ' ')} "


def normalize(text: str, settings: Normalization | None = None) -> str:
    """The text a model reads: mentions, links, hashtags, emojis, elongations and case as ``settings`` say."""
    settings = settings or Normalization()
    if settings.urls:
        text = _URL.sub("http", text)
    if settings.mentions:
        text = _MENTION.sub("@user", text)
    if settings.hashtags:
        text = _HASHTAG.sub(lambda match: "#" + split_hashtag(match.group(1)), text)
    if settings.emojis:
        import emoji

        text = emoji.replace_emoji(text, replace=_emoji_name)
    if settings.elongations:
        text = _ELONGATION.sub(r"\1\1", text)
    if settings.lowercase:
        text = text.lower()
    return _SPACES.sub(" ", text).strip()


class Normalizer:
    """``normalize`` with fixed settings as a picklable callable (a scikit-learn ``preprocessor``)."""

    def __init__(self, settings: Normalization) -> None:
        self.settings = settings

    def __call__(self, text: str) -> str:
        return normalize(text, self.settings)


# ------------------------------------------------------------------------------------ classifiers


def softmax(logits: Any) -> Any:
    import numpy as np

    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices in batches of similar length (longest first), so a batch pads to little more than its texts."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


@dataclass
class SentimentClassifier:
    """A fine-tuned sequence classifier, run by PyTorch (``session`` is None) or by onnxruntime."""

    tokenizer: Any
    labels: tuple[str, ...]
    normalization: Normalization
    max_length: int = 128
    model: Any = None  # transformers model (PyTorch)
    session: Any = None  # onnxruntime.InferenceSession
    source: str = ""

    @property
    def backend(self) -> str:
        return "onnx" if self.session is not None else "torch"

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of the normalised texts, truncated to ``max_length``."""
        normalised = [normalize(text, self.normalization) for text in texts]
        encoded = self.tokenizer(normalised, truncation=True, max_length=self.max_length)
        return list(encoded["input_ids"])

    def logits(self, texts: Sequence[str], batch_size: int = 64) -> Any:
        """A (len(texts), labels) float32 array of logits, in input order."""
        import numpy as np

        ids = self.encode(texts)
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for batch in length_sorted_batches([len(x) for x in ids], batch_size):
            padded = self.tokenizer.pad({"input_ids": [ids[i] for i in batch]}, return_tensors="np")
            out[batch] = self._forward(padded["input_ids"], padded["attention_mask"])
        return out

    def _forward(self, input_ids: Any, attention_mask: Any) -> Any:
        import numpy as np

        if self.session is not None:
            feeds = {"input_ids": input_ids.astype(np.int64), "attention_mask": attention_mask.astype(np.int64)}
            names = {node.name for node in self.session.get_inputs()}
            if "token_type_ids" in names:
                feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
            return self.session.run(["logits"], feeds)[0]
        import torch

        with torch.inference_mode():
            result = self.model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(attention_mask))
        return result.logits.float().numpy()

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> list[Prediction]:
        """``(label, {label: probability})`` per text, in input order."""
        if not texts:
            return []
        probabilities = softmax(self.logits(texts, batch_size))
        return [_prediction(self.labels, row) for row in probabilities]


def _prediction(labels: Sequence[str], row: Any) -> Prediction:
    scores = {label: float(p) for label, p in zip(labels, row, strict=True)}
    return max(scores, key=lambda label: scores[label]), scores


def read_run_manifest(directory: Path) -> dict[str, Any] | None:
    path = directory / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


def load_classifier(ref: str | Path, backend: Backend = "auto", threads: int | None = None) -> SentimentClassifier:
    """A classifier from a run directory (``kind: sentiment``), its ONNX export (``kind: sentiment-onnx``,
    or any directory with ``model.onnx`` and a tokenizer), a transformers directory or a hub id.

    ``backend="onnx"`` on a run directory loads its ``onnx/`` export; ``"torch"`` refuses an ONNX directory."""
    path = Path(ref)
    manifest = read_run_manifest(path) if path.is_dir() else None
    if backend == "onnx" and manifest is not None and manifest.get("kind") == RUN_KIND:
        path = path / manifest.get("onnx", "onnx")
        manifest = read_run_manifest(path)
        if manifest is None:
            raise ModelNotFoundError(f"{ref}: no ONNX export; make one: tunedesk sentiment export-onnx {ref}")
    is_onnx = path.is_dir() and (path / ONNX_FILE).is_file()
    if backend == "torch" and is_onnx:
        raise ModelNotFoundError(f"{ref}: an ONNX export; load it with the onnx backend or give the run directory")
    if backend == "onnx" and not is_onnx:
        raise ModelNotFoundError(f"{ref}: no {ONNX_FILE} here; export one: tunedesk sentiment export-onnx RUN")
    local = str(ref).startswith((".", "/", "~")) or str(ref).count("/") > 1 or path.parent.is_dir()
    if not path.is_dir() and local and path.parent != Path("."):
        raise ModelNotFoundError(f"{ref}: no such model directory")
    if is_onnx:
        return _load_onnx(path, manifest or {}, threads)
    return _load_torch(path if path.is_dir() else str(ref), manifest or {}, threads)


def _settings(manifest: dict[str, Any], tokenizer: Any) -> tuple[tuple[str, ...], Normalization, int]:
    labels = tuple(manifest.get("labels", LABELS))
    normalization = Normalization.model_validate(manifest.get("normalization", {}))
    normalization = normalization.resolved(lowercase=bool(getattr(tokenizer, "do_lower_case", False)))
    return labels, normalization, int(manifest.get("max_length", 128))


def _load_torch(ref: Path | str, manifest: dict[str, Any], threads: int | None) -> SentimentClassifier:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if threads:
        torch.set_num_threads(threads)
    directory = ref / manifest["model_dir"] if isinstance(ref, Path) and "model_dir" in manifest else ref
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory)
        model = AutoModelForSequenceClassification.from_pretrained(directory).eval()
    except OSError as exc:
        raise ModelNotFoundError(f"{ref}: cannot load a sequence classifier: {exc}") from None
    labels, normalization, max_length = _settings(manifest, tokenizer)
    if not manifest:  # a hub id or plain directory: its own label names
        labels = tuple(str(model.config.id2label[i]).lower() for i in range(model.config.num_labels))
    return SentimentClassifier(tokenizer, labels, normalization, max_length, model=model, source=str(ref))


def _load_onnx(path: Path, manifest: dict[str, Any], threads: int | None) -> SentimentClassifier:
    import onnxruntime as ort
    from transformers import AutoTokenizer

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path / ONNX_FILE), options, providers=["CPUExecutionProvider"])
    tokenizer = AutoTokenizer.from_pretrained(path)
    labels, normalization, max_length = _settings(manifest, tokenizer)
    return SentimentClassifier(tokenizer, labels, normalization, max_length, session=session, source=str(path))


# ---------------------------------------------------------------------------------- TF-IDF baseline


class TfidfBaseline:
    """TF-IDF of word 1-2-grams and character 2-5-grams (within words) into a logistic regression.

    The same ``normalize`` runs first (lowercased), so the baseline and the fine-tuned model read the same text."""

    def __init__(self, normalization: Normalization | None = None, c: float = 10.0, seed: int = 0) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import FeatureUnion, Pipeline

        self.normalization = (normalization or Normalization()).resolved(lowercase=True)
        prepare = Normalizer(self.normalization)
        features = FeatureUnion(
            [
                ("word", TfidfVectorizer(preprocessor=prepare, ngram_range=(1, 2), sublinear_tf=True)),
                (
                    "char",
                    TfidfVectorizer(preprocessor=prepare, analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
                ),
            ]
        )
        self.pipeline = Pipeline(
            [("features", features), ("classifier", LogisticRegression(C=c, max_iter=2000, random_state=seed))]
        )

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(str(label) for label in self.pipeline.classes_)

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> TfidfBaseline:
        self.pipeline.fit(list(texts), list(labels))
        return self

    def predict(self, texts: Sequence[str], batch_size: int = 0) -> list[Prediction]:
        """``(label, {label: probability})`` per text; ``batch_size`` is accepted for symmetry and unused."""
        if not texts:
            return []
        probabilities = self.pipeline.predict_proba(list(texts))
        return [_prediction(self.labels, row) for row in probabilities]
