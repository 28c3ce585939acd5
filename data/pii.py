"""PII redaction with typed placeholders: ``[EMAIL]``, ``[PHONE]``, ``[CARD]``, ``[IBAN]``, ``[ORDER_ID]``,
``[ADDRESS]``, ``[NAME]``.

Decisions:
- Precision over recall only where a checksum exists: a 13-19 digit run is a card only if it passes
  the Luhn check, and an IBAN only if it passes mod 97. So order totals, dates and quantities survive.
- Phone numbers need 9 to 15 digits in a phone-like layout (optional +country code, groups split by
  spaces, dots, dashes or parentheses) and must not look like a date or a price.
- Order and ticket ids follow patterns the caller can replace (``order #123456``, ``ORD-2024-77812``,
  ``ticket 55123``...): every shop numbers orders its own way.
- Street addresses: a house number, one to four capitalised words, and a street-type word.
- Person names: no NER model installs offline here (spaCy's and flair's models come from their own
  servers, not PyPI), so names are found by the context they stand in: "my name is Sarah Lee",
  "Mr. Okafor", "Hi Sarah," or "Thanks, Sarah" opening a message, a sign-off line ("Regards,\nSarah
  Lee") closing it. Names must be capitalised; greetings skip words like "Team" or "There". A name
  mentioned any other way survives: this is recall traded for never eating ordinary words.
- Placeholders are stable text, so a fine-tuned model learns to say "[ORDER_ID]" rather than invent one.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b")
CARD = re.compile(r"(?<![\d.,])\d(?:[ -]?\d){12,18}(?![\d.,]*\d)")
PHONE = re.compile(
    r"(?<![\w.,/])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,8}){1,4}(?![\w/]|[.,]\d)"
)
ADDRESS = re.compile(
    r"\b\d{1,5}[A-Za-z]?\s+(?:[A-Z][a-z]+\.?\s+){1,4}"
    r"(?:(?:Street|Avenue|Road|Boulevard|Lane|Drive|Way|Court|Place|Terrace|Close|Square|Parkway)\b"
    r"|(?:St|Ave|Rd|Blvd|Ln|Dr|Ct|Pl|Pkwy)\b\.?)"  # an abbreviation keeps its full stop, a word leaves it
)
_WORD = r"[A-Z](?:[a-z]+|'[A-Z][a-z]+)(?:-[A-Z][a-z]+)?"  # Lee, O'Neil, Smith-Jones
_NAME = _WORD + r"(?: " + _WORD + r"){0,2}"
NOT_NAMES = frozenset(
    "There Team Teams Customer Customers All Everyone Everybody Support Again Sir Madam Folks Guys Friend Friends "
    "So Very For Again Both Good Morning Afternoon Evening Anyway Though Once Agent".split()
)
NAME_CONTEXTS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(pattern.replace("NAME", _NAME))
    for pattern in (
        r"(\b[Mm]y name(?: is|'s) )(NAME)",
        r"(\b[Nn]ame: )(NAME)",
        r"(\b(?:Mr|Mrs|Ms|Miss|Dr|Mx)\.? )(NAME)",
        r"(?m)(^(?:Hi|Hello|Hey|Thanks,|Thank you,) )([A-Z][a-z]+)(?=[,!.])",
        r"(?m)(^Dear )(NAME)(?=[,!.:])",
        r"(?m)(^(?i:regards|best regards|kind regards|best|cheers|thanks|sincerely|yours),?[ \t]*\n)(NAME)[ \t]*$",
    )
)
DATE_LIKE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")
ORDER_ID_PATTERNS: tuple[str, ...] = (
    r"\b(?:ORD|ORDER|INV|TKT|TICKET|CASE|RMA)[-_]?\d[\d-]{3,}\b",
    r"(?<=\b[Oo]rder )(?:#|no\.? ?|number )?\d{5,}\b",
    r"(?<=\b[Tt]icket )(?:#|no\.? ?|number )?\d{4,}\b",
    r"(?<=\b[Cc]ase )(?:#|no\.? ?|number )?\d{4,}\b",
    r"(?<=\b[Oo]rder number )\d{5,}\b",
    r"(?<=\b[Oo]rder )?#\d{5,}\b",
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


@dataclass
class Redactor:
    order_id_patterns: Iterable[str] = ORDER_ID_PATTERNS
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._order_ids = [re.compile(p) for p in self.order_id_patterns]

    def redact(self, text: str) -> str:
        text = EMAIL.sub(self._placeholder("EMAIL"), text)
        text = IBAN.sub(lambda m: self._count("IBAN") if iban_ok(m.group()) else m.group(), text)
        text = CARD.sub(lambda m: self._count("CARD") if luhn_ok(re.sub(r"\D", "", m.group())) else m.group(), text)
        for pattern in self._order_ids:
            text = pattern.sub(self._placeholder("ORDER_ID"), text)
        text = ADDRESS.sub(self._placeholder("ADDRESS"), text)
        text = PHONE.sub(self._phone, text)
        for pattern in NAME_CONTEXTS:
            text = pattern.sub(self._name, text)
        return text

    def _placeholder(self, kind: str) -> Callable[[re.Match[str]], str]:
        return lambda match: self._count(kind)

    def _count(self, kind: str) -> str:
        self.counts[kind] += 1
        return f"[{kind}]"

    def _name(self, match: re.Match[str]) -> str:
        if match.group(2).split()[0] in NOT_NAMES:
            return match.group()
        return match.group(1) + self._count("NAME")

    def _phone(self, match: re.Match[str]) -> str:
        text = match.group()
        digits = re.sub(r"\D", "", text)
        if not 9 <= len(digits) <= 15 or DATE_LIKE.match(text):
            return text
        return self._count("PHONE")
