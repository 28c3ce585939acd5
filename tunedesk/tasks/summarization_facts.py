"""The faithfulness check of legal summaries: every date, number and name in a summary must be in its source.

``faithfulness(summary, source)`` extracts the summary's facts and looks each one up in the source;
the share found is the example's faithfulness, and the facts not found are listed so a reader can see
what the model made up.

Decisions (regular expressions, no NER model: the facts of a legal summary are written in a few
regular shapes, and a rule that can be read is a rule that can be argued with):
- Dates: ``July 19, 2022``, ``19 July 2022``, ``2022-07-19`` and ``07/19/2022`` (US order) are one fact,
  keyed ``2022-07-19``; ``July 2022`` is keyed ``2022-07`` and is supported by any full date of that
  month. Dates are taken out of the text before numbers are read, so a date's day and year are not
  counted again as numbers.
- Numbers: ``$1,200``, ``1200``, ``1,200.00`` and ``USD 1200`` are the number ``1200``; ``10%`` and
  ``10 percent`` are ``10``; number words (``ten``, ``thirty-six``) are numbers too, since legal text
  writes ``ten (10) days``. The unit is not part of the fact: "10 days" is supported by a source that
  says 10 anywhere (a check of the unit would need parsing the sentence, not a regex). In the source
  every number counts, dates included, so a summary's "in 2022" is supported by a date in 2022.
- Names: a run of two or more capitalised words, with ``of``/``and``/``&``/``for``/``de`` allowed
  inside (``Rookwell Textiles Corporation``, ``State of Washington``, ``Mei Valdivia``), minus a
  sentence-opening word such as ``The`` or ``Under``; ``A Ltd and B LLC`` is two names when both sides
  have two words or more (``England and Wales`` stays one); a final full stop stays only after an
  abbreviation (``Inc.``); and defined terms, a capitalised word or words
  after a lower-case ``the`` (``the Licensee``, ``the Effective Date``). A name is supported when it
  occurs in the source as whole words, ignoring case and line breaks, and a possessive ``'s``.
- A summary with no facts has faithfulness ``None`` (nothing to check), not 1.0, so it cannot raise a
  model's average by saying nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

FactKind = Literal["date", "number", "name"]

MONTHS = "january february march april may june july august september october november december".split()
_MONTH_NUMBER = {name: index + 1 for index, name in enumerate(MONTHS)}
_MONTH_NUMBER.update({name[:3]: index + 1 for index, name in enumerate(MONTHS)})
_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
    r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.?"
)
_DATE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"\b(?P<month>{_MONTH})\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<year>\d{{4}})\b"), "mdy"),
    (
        re.compile(
            rf"\b(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:day\s+of\s+)?(?P<month>{_MONTH}),?\s+(?P<year>\d{{4}})\b"
        ),
        "dmy",
    ),
    (re.compile(r"\b(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})\b"), "iso"),
    (re.compile(r"\b(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4})\b"), "us"),
    (re.compile(rf"\b(?P<month>{_MONTH})\s+(?P<year>\d{{4}})\b"), "my"),
)
_NUMBER = re.compile(
    r"(?<![\w.])(?:USD\s?|US\$|[$€£])?\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![\w.,])(?:USD\s?|US\$|[$€£])?\d+(?:\.\d+)?"
)
_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_WORD_VALUE = {word: index for index, word in enumerate(_UNITS)} | {word: 20 + 10 * i for i, word in enumerate(_TENS)}
_NUMBER_WORD = re.compile(
    rf"\b(?P<tens>{'|'.join(_TENS)})(?:[- ](?P<unit>{'|'.join(_UNITS[1:10])}))?\b|\b(?P<small>{'|'.join(_UNITS)})\b",
    re.IGNORECASE,
)
# A capitalised word; a full stop belongs to it only in an abbreviation (``Inc.``), else it ends the sentence.
_WORD = r"(?<![\w'’])(?:(?:Inc|Ltd|Corp|Co|No|Jr|Sr|St|Bros|L\.L\.C|L\.P|N\.A)\.|[A-Z][A-Za-z0-9&'’-]*)"
_NAME = re.compile(rf"{_WORD}(?:(?:\s+(?:of|and|&|for|de|van|von|the))*\s+{_WORD})+")
_DEFINED_TERM = re.compile(rf"(?<=\bthe )(?:{_WORD})(?:\s+{_WORD})*")
# Words that open a sentence or clause and so are capitalised without being part of a name.
_OPENERS = frozenset(
    "the this that these those a an if in on at under upon each either any all no neither both after before "
    "during following for from as by with while when where unless until pursuant and or but they it we he she "
    "you our its their".split()
)
_POSSESSIVE = re.compile(r"['’]s$")
# A name's final full stop is kept only after these (``Inc.``); otherwise it ends the sentence.
_ABBREVIATIONS = frozenset("inc ltd corp co l.l.c llc l.p n.a no jr sr st bros".split())
_JOINED = re.compile(r"\s+(?:and|&)\s+")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Fact:
    kind: FactKind
    text: str  # as written in the summary
    key: str  # the normalised form compared with the source


@dataclass
class Faithfulness:
    """How much of a summary the source supports."""

    facts: list[Fact] = field(default_factory=list)
    unsupported: list[Fact] = field(default_factory=list)

    @property
    def share(self) -> float | None:
        """Share of the summary's facts found in the source; None when it states none."""
        return 1 - len(self.unsupported) / len(self.facts) if self.facts else None

    def as_dict(self) -> dict[str, object]:
        return {
            "faithfulness": self.share,
            "facts": len(self.facts),
            "unsupported": [f"{f.kind}: {f.text}" for f in self.unsupported],
        }


def _date_key(match: re.Match[str], style: str) -> str | None:
    month_text = match.group("month").rstrip(".").lower()
    month = int(month_text) if month_text.isdigit() else _MONTH_NUMBER.get(month_text[:3])
    year = int(match.group("year"))
    if month is None or not 1 <= month <= 12:
        return None
    if style == "my":
        return f"{year:04d}-{month:02d}"
    day = int(match.group("day"))
    return f"{year:04d}-{month:02d}-{day:02d}" if 1 <= day <= 31 else None


def find_dates(text: str) -> tuple[list[Fact], str]:
    """The dates in ``text`` and the text with them blanked out (same length, so offsets hold)."""
    facts: list[Fact] = []
    chars = list(text)
    for pattern, style in _DATE_PATTERNS:
        for match in pattern.finditer("".join(chars)):
            key = _date_key(match, style)
            if key is not None:
                facts.append(Fact("date", match.group(), key))
                chars[match.start() : match.end()] = " " * (match.end() - match.start())
    return facts, "".join(chars)


def number_key(written: str) -> str:
    """``$1,200.00`` -> ``1200``; ``2.50`` -> ``2.5``."""
    digits = re.sub(r"^(?:USD\s?|US\$|[$€£])", "", written).replace(",", "")
    if "." in digits:
        digits = digits.rstrip("0").rstrip(".")
    return digits.lstrip("0") or "0"


def find_numbers(text: str) -> list[Fact]:
    facts = [Fact("number", m.group(), number_key(m.group())) for m in _NUMBER.finditer(text)]
    for match in _NUMBER_WORD.finditer(text):
        if match.group("small"):
            value = _WORD_VALUE[match.group("small").lower()]
        else:
            value = _WORD_VALUE[match.group("tens").lower()] + (
                _WORD_VALUE[match.group("unit").lower()] if match.group("unit") else 0
            )
        facts.append(Fact("number", match.group(), str(value)))
    return facts


def _clean_name(text: str) -> str | None:
    words = _SPACES.sub(" ", text).split(" ")
    while words and words[0].lower() in _OPENERS:
        words.pop(0)
    while words and words[-1].lower() in _OPENERS:
        words.pop()
    name = _POSSESSIVE.sub("", " ".join(words)).strip(" ,;:")
    if name.endswith(".") and name[:-1].rsplit(" ", 1)[-1].lower() not in _ABBREVIATIONS:
        name = name[:-1]
    return name or None


def _split_joined(name: str) -> list[str]:
    """``A Ltd and B LLC`` -> both parties; ``England and Wales`` (a side of one word) stays whole."""
    parts = _JOINED.split(name)
    return parts if len(parts) > 1 and all(len(part.split()) >= 2 for part in parts) else [name]


def _name_key(name: str) -> str:
    """Lower case, no final full stop: ``Westmoor LLC.`` at a sentence end is the source's ``Westmoor LLC``."""
    return name.lower().replace("’", "'").rstrip(".")


def find_names(text: str) -> list[Fact]:
    """Party names (capitalised runs of two or more words) and defined terms (``the Licensee``)."""
    found: dict[str, Fact] = {}
    for match in _NAME.finditer(text):
        cleaned = _clean_name(match.group())
        for name in _split_joined(cleaned) if cleaned else []:
            if len(name.split()) >= 2:
                found.setdefault(_name_key(name), Fact("name", name, _name_key(name)))
    for match in _DEFINED_TERM.finditer(text):
        term = _clean_name(match.group())
        if term and not any(_name_key(term) in key for key in found):
            found.setdefault(_name_key(term), Fact("name", term, _name_key(term)))
    return list(found.values())


def extract_facts(text: str) -> list[Fact]:
    """The dates, numbers and names ``text`` states, each once (by kind and key), in that order."""
    dates, rest = find_dates(text)
    names = find_names(rest)
    for name in names:  # "Section 4" or "Schedule 2" in a name is not also a separate number fact
        rest = re.sub(re.escape(name.text), " ", rest)
    unique: dict[tuple[str, str], Fact] = {}
    for fact in [*dates, *find_numbers(rest), *names]:
        unique.setdefault((fact.kind, fact.key), fact)
    return list(unique.values())


class SourceIndex:
    """What a source states, ready for many lookups (a map-reduce summary checks against one document)."""

    def __init__(self, source: str) -> None:
        dates, _ = find_dates(source)
        self.dates = {fact.key for fact in dates}
        self.months = {key[:7] for key in self.dates}
        self.numbers = {fact.key for fact in find_numbers(source)}
        self.text = _SPACES.sub(" ", source).lower().replace("’", "'")

    def supports(self, fact: Fact) -> bool:
        if fact.kind == "date":
            return fact.key in self.dates or (len(fact.key) == 7 and fact.key in self.months)
        if fact.kind == "number":
            return fact.key in self.numbers
        name = re.escape(fact.key).replace(r"\ ", r"\s+")
        return re.search(rf"(?<!\w){name}(?!\w)", self.text) is not None


def faithfulness(summary: str, source: str | SourceIndex) -> Faithfulness:
    """The summary's facts and those of them ``source`` does not state."""
    index = source if isinstance(source, SourceIndex) else SourceIndex(source)
    facts = extract_facts(summary)
    return Faithfulness(facts=facts, unsupported=[fact for fact in facts if not index.supports(fact)])
