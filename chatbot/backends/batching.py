"""Continuous batching on CPU: many answers decoded together, one onnxruntime step for all of them.

Why: ORT GenAI's ``og.Engine`` (continuous batching) fails on CPU (0.18: every request ends with
``ENGINE_EXECUTION_FAILURE``); a batched ``og.Generator`` takes all prompts at once, left-padded, and the CPU
GroupQueryAttention kernel then attends to the padding (wrong answers); and one generator per request holds
the GIL in ``generate_next_token``, so several in one process run one at a time. Decoding 16 rows in one
step costs about twice one row on 2 cores (the int4 weights are read once per step, not once per row), so
batching is where the throughput is.

Decisions:
- Plain ``onnxruntime`` on the decoder that the GenAI builder made (``model.onnx``, names from
  ``genai_config.json``); ``session.run`` releases the GIL. One engine thread owns the session.
- Each request is prefilled alone (batch 1, no padding: the logits are the last prompt token's), then joins
  the batch between two decode steps and leaves it when done; nobody waits for the longest answer.
- The KV cache is right-padded: row b's ``attention_mask`` has ``length_b + 1`` ones, which the graph turns
  into GroupQueryAttention's per-row ``seqlens_k`` (and rotary positions). Rows of different lengths are
  exact, unlike left padding. A step's ``present`` tensors are the next step's ``past`` as they are; the
  batch is rebuilt (rows copied) only when a row joins or leaves.
- Prompt-prefix reuse: the KV of recent prompts is kept (LRU, ``prefix_cache_size``), and a new prompt
  prefills only what follows its longest common prefix with one of them (the shared system prompt, or the
  previous turn of the same conversation). Chunked prefill is bit-exact, so reuse never changes an answer.
- Numerics: a row's logits depend slightly on the batch it runs in (another int4 kernel path for several
  rows), and a 135M int4 model amplifies 1e-5 into a different greedy token now and then. Alone, greedy is
  bit-for-bit GenAI's answer; under load, an answer is one the model could as well have given.
- Sampling (greedy, temperature, top-k, top-p, repetition penalty, seed) per row in numpy, as GenAI does it.
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tunedesk.errors import ConfigError, GenerationError

log = logging.getLogger(__name__)

DONE = None  # what a request's token queue yields after its last token
CLEAR = "clear"  # queued like a request: forget the cached prefixes once what was queued before is done


@dataclass(frozen=True)
class Sampling:
    """How one row picks its next token. ``temperature == 0``: greedy."""

    temperature: float = 0.0
    top_k: int = 50
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int | None = None


@dataclass(eq=False)
class Request:
    """One answer being generated: its tokens arrive on ``tokens`` (then ``DONE``, or an exception)."""

    prompt: list[int]
    budget: int
    sampling: Sampling
    tokens: queue.SimpleQueue[int | BaseException | None] = field(default_factory=queue.SimpleQueue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    reused: int = 0  # prompt tokens whose KV came from an earlier prompt
    seen: list[int] = field(default_factory=list)  # prompt + generated, for the repetition penalty
    generated: int = 0
    length: int = 0  # tokens in this row's KV cache
    rng: np.random.Generator | None = None

    def __iter__(self) -> Iterator[int]:
        """The generated token ids, as the engine makes them; re-raises the engine's error."""
        while True:
            item = self.tokens.get()
            if item is DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def cancel(self) -> None:
        self.cancelled.set()


@dataclass(frozen=True)
class DecoderLayout:
    """The names and shapes a GenAI-built decoder takes, from its ``genai_config.json``."""

    layers: int
    past: list[str]  # input names, key and value per layer
    present: list[str]  # the matching output names
    kv_heads: int
    head_size: int
    position_ids: bool

    @classmethod
    def read(cls, directory: Path, input_names: Sequence[str]) -> DecoderLayout:
        config = json.loads((directory / "genai_config.json").read_text())["model"]["decoder"]
        layers = int(config["num_hidden_layers"])
        names_in, names_out = config["inputs"], config["outputs"]
        past = [names_in[kind] % layer for layer in range(layers) for kind in ("past_key_names", "past_value_names")]
        present = [
            names_out[kind] % layer for layer in range(layers) for kind in ("present_key_names", "present_value_names")
        ]
        known = {"input_ids", "attention_mask", "position_ids", *past}
        unknown = sorted(set(input_names) - known)
        if unknown:
            raise ConfigError(f"{directory / config['filename']} takes inputs batching cannot feed: {unknown}")
        return cls(
            layers=layers,
            past=past,
            present=present,
            kv_heads=int(config["num_key_value_heads"]),
            head_size=int(config["head_size"]),
            position_ids="position_ids" in input_names,
        )


class BatchEngine:
    """Answers up to ``max_batch`` requests at once from the ONNX decoder in ``directory``."""

    def __init__(self, directory: Path, max_batch: int = 16, threads: int = 0, prefix_cache_size: int = 4) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        config = json.loads((directory / "genai_config.json").read_text())["model"]
        self.session = ort.InferenceSession(
            str(directory / config["decoder"]["filename"]), options, providers=["CPUExecutionProvider"]
        )
        self.layout = DecoderLayout.read(directory, [i.name for i in self.session.get_inputs()])
        past_type = next(i.type for i in self.session.get_inputs() if i.name == self.layout.past[0])
        self.kv_dtype = np.float16 if "float16" in past_type else np.float32
        self.eos = set(np.atleast_1d(config["eos_token_id"]).tolist())
        self.max_batch = max_batch
        self.prefix_cache_size = prefix_cache_size
        self._prefixes: OrderedDict[tuple[int, ...], list[np.ndarray]] = OrderedDict()
        self._waiting: queue.SimpleQueue[Request | str | None] = queue.SimpleQueue()  # None: stop
        self._rows: list[Request] = []
        self._kv: list[np.ndarray] = []  # per past input: [rows, kv_heads, longest row, head_size]
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.steps = 0  # decode steps run, and rows decoded in them: the mean batch size is their ratio
        self.rows_decoded = 0
        _ENGINES.add(self)

    def submit(self, prompt: Sequence[int], budget: int, sampling: Sampling) -> Request:
        """Queue a request; its tokens arrive on the returned ``Request`` as they are made."""
        if not prompt:
            raise GenerationError("cannot generate from an empty prompt")
        request = Request(list(prompt), budget, sampling, seen=list(prompt))
        if sampling.temperature > 0:
            request.rng = np.random.default_rng(sampling.seed)
        self._waiting.put(request)
        self._start()
        return request

    def warm(self, tokens: Sequence[int]) -> None:
        """Prefill ``tokens`` (a finished turn, as the next turn's prompt will begin) into the prefix cache, when
        the engine has nothing else to do: the next turn then prefills only its new question. Under load it is
        skipped; that turn prefills its history itself."""
        if self.prefix_cache_size > 0 and len(tokens) > 2:
            self._waiting.put(Request(list(tokens), budget=0, sampling=Sampling()))
            self._start()

    def clear(self) -> None:
        """Forget every cached prefix (after the warm-ups already queued): the next request starts cold."""
        self._waiting.put(CLEAR)
        self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="tunedesk-batch", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Stop the engine thread after its current step (at exit: a thread killed inside onnxruntime aborts
        the process). Answers in progress end with an error."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._waiting.put(None)
            thread.join(timeout=10)

    # The engine thread.

    def _run(self) -> None:
        while True:
            try:
                if not self._rows and not self._admit(self._waiting.get()):  # idle: sleep until there is work
                    break
                stopping = False
                while len(self._rows) < self.max_batch:
                    try:
                        if not self._admit(self._waiting.get_nowait()):
                            stopping = True
                            break
                    except queue.Empty:
                        break
                if stopping:
                    break
                self._drop_finished()
                if self._rows:
                    self._decode()
                    self._drop_finished()
            except Exception as exc:  # noqa: BLE001 - a bug here must not leave readers waiting forever
                log.exception("batch engine failed")
                for row in self._rows:
                    row.tokens.put(GenerationError(f"generation failed: {type(exc).__name__}: {exc}"))
                self._rows, self._kv = [], []
        stopped = GenerationError("the model was shut down while answering")
        for row in self._rows:
            row.tokens.put(stopped)
        self._rows, self._kv = [], []
        while True:
            try:
                waiting = self._waiting.get_nowait()
            except queue.Empty:
                return
            if isinstance(waiting, Request):
                waiting.tokens.put(stopped)

    def _admit(self, request: Request | str | None) -> bool:
        """Prefill ``request`` alone and add it to the batch, or end it at once (cancelled, failed, done).
        ``None`` (stop): false."""
        if request is None:
            return False
        if isinstance(request, str):  # CLEAR
            self._prefixes.clear()
            return True
        if request.cancelled.is_set() or (request.budget == 0 and self._rows):  # a warm-up skipped under load
            request.tokens.put(DONE)
            return True
        try:
            past, reused = self._cached_prefix(request.prompt)
            request.reused = reused
            logits, kv = self._step(np.array([request.prompt[reused:]], np.int64), [reused], past)
            self._remember(request.prompt, kv)
            if request.budget == 0:  # a warm-up: the KV is all it was for
                request.tokens.put(DONE)
                return True
        except Exception as exc:  # noqa: BLE001 - handed to the request's reader, the engine goes on
            log.exception("prefill failed")
            request.tokens.put(GenerationError(f"generation failed: {type(exc).__name__}: {exc}"))
            return True
        request.length = len(request.prompt)
        self._emit(request, logits[0])
        if self._finished(request):
            request.tokens.put(DONE)
            return True
        self._join(request, kv)
        return True

    def _decode(self) -> None:
        ids = np.array([[row.seen[-1]] for row in self._rows], np.int64)
        try:
            logits, self._kv = self._step(ids, [row.length for row in self._rows], self._kv)
        except Exception as exc:  # noqa: BLE001 - every row ends with the error; the engine goes on
            log.exception("decode step failed")
            for row in self._rows:
                row.tokens.put(GenerationError(f"generation failed: {type(exc).__name__}: {exc}"))
            self._rows, self._kv = [], []
            return
        self.steps += 1
        self.rows_decoded += len(self._rows)
        for row, row_logits in zip(self._rows, logits, strict=True):
            row.length += 1
            self._emit(row, row_logits)

    def _step(self, ids: np.ndarray, lengths: list[int], past: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """One run: ``ids`` [rows, new tokens] after ``lengths`` cached tokens per row; last logits and KV."""
        rows, new = ids.shape
        total = max(lengths) + new
        mask = (np.arange(total)[None, :] < (np.array(lengths) + new)[:, None]).astype(np.int64)
        feeds: dict[str, np.ndarray] = {"input_ids": ids, "attention_mask": mask}
        if self.layout.position_ids:
            feeds["position_ids"] = (np.array(lengths)[:, None] + np.arange(new)[None, :]).astype(np.int64)
        if not past:
            empty = np.zeros((rows, self.layout.kv_heads, 0, self.layout.head_size), self.kv_dtype)
            past = [empty] * len(self.layout.past)
        feeds.update(zip(self.layout.past, past, strict=True))
        logits, *present = self.session.run(["logits", *self.layout.present], feeds)
        return logits[:, -1, :], present

    def _emit(self, row: Request, logits: np.ndarray) -> None:
        token = pick(logits, row.seen, row.sampling, row.rng)
        row.seen.append(token)
        row.generated += 1
        row.tokens.put(token)

    def _finished(self, row: Request) -> bool:
        return row.cancelled.is_set() or row.generated >= row.budget or row.seen[-1] in self.eos

    def _join(self, request: Request, kv: list[np.ndarray]) -> None:
        """Add a prefilled row: every KV tensor padded (right) to the longest row, then stacked."""
        self._rows.append(request)
        if not self._kv:
            self._kv = kv
            return
        longest = max(self._kv[0].shape[2], kv[0].shape[2])
        self._kv = [
            np.concatenate([_pad(old, longest), _pad(new, longest)]) for old, new in zip(self._kv, kv, strict=True)
        ]

    def _drop_finished(self) -> None:
        keep = [i for i, row in enumerate(self._rows) if not self._finished(row)]
        if len(keep) == len(self._rows):
            return
        for row in self._rows:
            if self._finished(row):
                row.tokens.put(DONE)
        self._rows = [self._rows[i] for i in keep]
        if not keep:
            self._kv = []
            return
        longest = max(row.length for row in self._rows)  # the padding past it goes too
        self._kv = [np.ascontiguousarray(tensor[keep, :, :longest]) for tensor in self._kv]

    # Prompt-prefix reuse.

    def _cached_prefix(self, prompt: list[int]) -> tuple[list[np.ndarray], int]:
        """The KV of the longest cached prefix of ``prompt`` (leaving at least two tokens to prefill: one
        would take the decode kernel path) and its length; nothing cached: ``[], 0``."""
        best, length = None, 0
        for tokens in self._prefixes:
            common = _common_prefix(tokens, prompt, len(prompt) - 2)
            if common > length:
                best, length = tokens, common
        if best is None:
            return [], 0
        self._prefixes.move_to_end(best)
        return [np.ascontiguousarray(tensor[:, :, :length]) for tensor in self._prefixes[best]], length

    def _remember(self, prompt: list[int], kv: list[np.ndarray]) -> None:
        if self.prefix_cache_size <= 0:
            return
        self._prefixes[tuple(prompt)] = kv
        self._prefixes.move_to_end(tuple(prompt))
        while len(self._prefixes) > self.prefix_cache_size:
            self._prefixes.popitem(last=False)


_ENGINES: weakref.WeakSet[BatchEngine] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for engine in list(_ENGINES):
        engine.close()


def pick(logits: np.ndarray, seen: Sequence[int], sampling: Sampling, rng: np.random.Generator | None) -> int:
    """The next token from one row's ``logits``: repetition penalty over ``seen``, then greedy or sampled
    (temperature, top-k, then top-p over what is left)."""
    scores = logits.astype(np.float32, copy=True)
    if sampling.repetition_penalty != 1.0:
        ids = np.unique(np.asarray(seen, np.int64))
        values = scores[ids]
        scores[ids] = np.where(values > 0, values / sampling.repetition_penalty, values * sampling.repetition_penalty)
    if sampling.temperature <= 0 or rng is None:
        return int(np.argmax(scores))
    scores = scores / sampling.temperature
    k = min(sampling.top_k, scores.shape[0])
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top])]
    probs = np.exp(scores[top] - scores[top[0]])
    probs /= probs.sum()
    if sampling.top_p < 1.0:
        keep = int(np.searchsorted(np.cumsum(probs), sampling.top_p)) + 1
        top, probs = top[:keep], probs[:keep] / probs[:keep].sum()
    return int(top[rng.choice(len(top), p=probs)])


def _pad(tensor: np.ndarray, length: int) -> np.ndarray:
    missing = length - tensor.shape[2]
    if missing == 0:
        return tensor
    return np.pad(tensor, ((0, 0), (0, 0), (0, missing), (0, 0)))


def _common_prefix(a: Sequence[int], b: Sequence[int], limit: int) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y or n >= limit:
            break
        n += 1
    return n
