"""Typo correction of customer turns with SymSpell (symspellpy ships its English frequency dictionary).

Decisions:
- Precision over recall: a wrong "correction" teaches the model a word the customer never wrote, a
  missed one costs little. Only lower-case or all-caps alphabetic words of 4+ letters that are not in
  the dictionary are touched, and the suggestion must be at edit distance 1 (2 for words of 8+
  letters). Capitalised words (names: "Jonh" is not "Jonah"), camel-case brands, numbers,
  placeholders (``[ORDER_ID]``), URLs, emails, hashtags and mentions are left alone. Among equally
  close suggestions a word the typo is a subsequence of wins (a dropped letter is the commonest typo:
  "brokn" is "broken", not the more frequent "brown"); otherwise the most frequent wins only by a
  factor of 5.
- Chat-speak and contractions written without an apostrophe ("pls", "thx", "dont", "lol") are how
  customers write; they are kept, not turned into "plus", "the", "done", "low".
- The dictionary takes ~4 s to index, once per process.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

KEEP: frozenset[str] = frozenset(
    "lol lmao omg btw idk imo tbh fyi asap pls plz thx thnx ty np wtf smh brb afaik ikr irl dm pm "
    "dont cant wont didnt doesnt isnt wasnt arent werent havent hasnt couldnt shouldnt wouldnt "
    "youre theyre ive youve weve thats whats wheres theres heres lets hows ill shes hes "
    "gonna wanna gotta kinda sorta dunno yall ok okay hey hiya tmrw tmr tho thru cuz coz yeah yep nope "
    "ur u r im id iam".split()
)
_SKIP = re.compile(r"\[[A-Z_]+\]|https?://\S+|www\.\S+|\S+@\S+")
_WORD = re.compile(r"(?<![\w'@#/.-])[A-Za-z]{4,}(?![\w'@/-]|\.\w)")
DOMINANCE = 5


@lru_cache(maxsize=1)
def _symspell() -> Any:
    import importlib.resources

    from symspellpy import SymSpell

    speller = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
    dictionary = importlib.resources.files("symspellpy") / "frequency_dictionary_en_82_765.txt"
    speller.load_dictionary(str(dictionary), term_index=0, count_index=1, encoding="utf-8")
    return speller


class SpellingCorrector:
    """Corrects likely typos in one text at a time; ``corrections`` counts what it changed."""

    def __init__(self, keep: frozenset[str] = KEEP) -> None:
        self.keep = keep
        self.corrections = 0
        self._speller = _symspell()
        self._cache: dict[str, str | None] = {}

    def correct(self, text: str) -> str:
        pieces: list[str] = []
        last = 0
        for skipped in _SKIP.finditer(text):
            pieces.append(_WORD.sub(self._replace, text[last : skipped.start()]))
            pieces.append(skipped.group())
            last = skipped.end()
        pieces.append(_WORD.sub(self._replace, text[last:]))
        return "".join(pieces)

    def _replace(self, match: re.Match[str]) -> str:
        word = match.group()
        if not (word.islower() or word.isupper()):
            return word  # a name or a brand: not ours to change
        fixed = self._suggest(word.lower())
        if fixed is None:
            return word
        self.corrections += 1
        return fixed.upper() if word.isupper() else fixed

    def _suggest(self, word: str) -> str | None:
        if word in self._cache:
            return self._cache[word]
        from symspellpy import Verbosity

        fixed: str | None = None
        if word not in self.keep and word not in self._speller.words:
            allowed = 2 if len(word) >= 8 else 1
            closest = self._speller.lookup(word, Verbosity.CLOSEST, max_edit_distance=allowed)
            dropped_letter = [s for s in closest if _is_subsequence(word, s.term)]
            if dropped_letter:
                fixed = dropped_letter[0].term
            elif len(closest) == 1 or (len(closest) > 1 and closest[0].count >= DOMINANCE * closest[1].count):
                fixed = closest[0].term
        self._cache[word] = fixed
        return fixed


def _is_subsequence(short: str, long: str) -> bool:
    letters = iter(long)
    return all(char in letters for char in short)
