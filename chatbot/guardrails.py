"""Checks on what the customer writes and what the bot answers, in one pipeline: hand-over, refusals, PII masking.

``Guardrails.from_settings(settings)`` builds the pipeline; ``await g.check_input(message)`` and
``await g.check_output(answer, system_prompt, question=message)`` return a ``Verdict``: allow, refuse (with
the polite message to show instead) or escalate to a human, the categories hit, and the text with its PII
masked, which is what gets stored and logged.

Decisions:
- Rules, not a model: "talk to an agent" must hand over every time (the policy says once is enough),
  and a rule is cheap, predictable and testable. A customer asking for a person is handed over at once,
  without asking the model first.
- The bot counts as unsure when its answer says so or offers a hand-over, which is what the support
  prompt tells it to do when the policy does not cover a question; such answers are escalations
  (``bot_unsure``) so their rate can be watched per backend.
- A message that only thanks or says goodbye ends the conversation: the customer is asked the survey.
- Input checks, each a set of patterns over the message, its normalised form (NFKC, invisible characters
  and Cyrillic look-alikes removed, leetspeak and s.p.a.c.e.d letters undone) and what it decodes to
  (base64, hex, %-escapes; ROT13 and reversed text when the message mentions them): prompt injection
  (override the instructions, fake system/tool turns), extraction of the system prompt, role-play
  jailbreaks, requests for other customers' data, requests for harmful instructions (weapons, drugs,
  malware, fraud), off-topic work (essays, code, homework), and abuse in Azure AI Content Safety's
  categories (hate, sexual, violence, self_harm) plus harassment (insults and slurs aimed at the agent).
  Patterns cover English and the common phrasings in French, German, Spanish, Italian, Portuguese and Dutch.
  A hit found only in a decoded form also counts as ``encoded``.
- Precision first where customers really talk like that: swearing at a late parcel, "kill my
  subscription", "ignore my previous message", a customer named Dick or Dan, a phishing mail to report
  all pass; insults aimed at the agent, threats and slurs do not.
- Azure AI Content Safety (``TUNEDESK_CONTENT_SAFETY_ENDPOINT``) replaces the local lexicon for its four
  categories when configured (key or Entra ID, like ``tunedesk.azure``); it is sent the masked text.
  Its errors never block a chat: the SDK retries a 429/5xx ``TUNEDESK_CONTENT_SAFETY_MAX_RETRIES`` times,
  the whole call is cut at ``TUNEDESK_CONTENT_SAFETY_TIMEOUT_S``, then the local lexicon decides and a
  warning is logged (status and error type only, never the text or the key). Harassment and every
  non-harm category stay local: Content Safety's text API has no category for them.
- The answer is checked too: a leaked system prompt (8 words in a row from it, or one of its
  identifier-like tokens such as an internal reference), abuse, PII that neither the customer nor the
  prompt gave (someone else's email, phone, card, IBAN) are refused; an unsure answer escalates but stays shown.
- Escalation is configurable (``TUNEDESK_GUARDRAILS_ESCALATE``, default ``self_harm``): those categories
  hand over to a person with a caring message instead of a refusal. Refusals never repeat the attack.
- ``TUNEDESK_GUARDRAILS=false`` turns the safety checks off; the hand-over on request and the PII masking
  stay, because they are the support policy and the privacy rule, not filters.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import codecs
import logging
import os
import re
import unicodedata
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import SecretStr

from data.pii import CARD, DATE_LIKE, EMAIL, IBAN, ORDER_ID_PATTERNS, PHONE, Redactor, iban_ok, luhn_ok
from tunedesk.errors import ConfigError

if TYPE_CHECKING:
    from tunedesk.settings import Settings

log = logging.getLogger("tunedesk.guardrails")

PERSON = (
    r"(?:a |an |the |some |your )?(?:real |live |actual )?"
    r"(?:human|person|agent|representative|rep|operator|someone|somebody|manager|supervisor|colleague)s?"
)
WANTS_HUMAN = re.compile(
    rf"\b(?:talk|speak|chat|connect|transfer|put|get|pass)\b(?:\s+\w+){{0,2}}?\s+(?:to|with|through to)\s+{PERSON}\b"
    rf"|\b(?:want|need|like|give me|get me)\s+(?:to\s+(?:talk|speak)\s+to\s+)?{PERSON}\b"
    r"|^\W*(?:human|agent|operator|representative|real person)(?:\s+please)?\W*$",
    re.IGNORECASE,
)
UNSURE = re.compile(
    r"\b(?:i'?m not sure|i am not sure|i'?m not certain|i don'?t know|i do not know|i cannot answer|i can'?t answer)\b"
    r"|\b(?:pass|hand|forward|escalate|transfer)\w*\b(?:\s+\w+){0,4}?\s+to\s+"
    r"(?:a |an |our )?(?:human|colleague|agent|person|team)",
    re.IGNORECASE,
)
GOODBYE = re.compile(
    r"^\W*(?:(?:ok(?:ay)?|great|perfect|cool|awesome|got it|that helps|that'?s all|that is all|all good)\W*)*"
    r"(?:thanks?(?: you)?(?: so much| a lot| very much)?|thx|ty|cheers|bye|goodbye|see you|have a (?:nice|good) day)"
    r"(?:\W+(?:bye|goodbye|that'?s all|that is all|have a (?:nice|good) day))*\W*$",
    re.IGNORECASE,
)


def wants_human(message: str) -> bool:
    """The customer asks for a person ("can I talk to an agent?", "human please")."""
    return bool(WANTS_HUMAN.search(message))


def sounds_unsure(answer: str) -> bool:
    """The bot says it does not know, or offers to pass the question to a person."""
    return bool(UNSURE.search(answer))


def says_goodbye(message: str) -> bool:
    """The message only thanks or says goodbye: the conversation is over."""
    return bool(GOODBYE.match(message.strip()))


# ---- categories and what the customer is told ---------------------------------------------------------
Action = Literal["allow", "refuse", "escalate"]
Reason = Literal["user_request", "bot_unsure", "guardrail"]  # an escalation's reason, as chatbot.store records it
HARM = ("hate", "sexual", "violence", "self_harm")  # Azure AI Content Safety's text categories
CATEGORIES = (
    *HARM,
    "harassment",
    "prompt_injection",
    "prompt_extraction",
    "jailbreak",
    "privacy",
    "harmful_request",
    "off_topic",
    "encoded",
    "human_requested",
    "prompt_leak",
    "pii_leak",
    "bot_unsure",
)
SCOPE = "I can help with orders, deliveries, returns, refunds and payments."
MESSAGES = {  # the first category of a verdict, in this order, picks the message
    "self_harm": (
        "I'm really sorry you're feeling this way, and I want you to get support from a person right now: I'm "
        "passing this conversation to a colleague. If you are in immediate danger, please call your local "
        "emergency number or a crisis line (for example 988 in the US, or 116 123 for the Samaritans in the UK "
        "and Ireland)."
    ),
    "privacy": (
        "For privacy reasons I can't look up or share information about other customers, or full payment "
        "details. I'm happy to help with your own order: what is its order number?"
    ),
    "hate": "I want to help, and I can do that best if we keep the conversation respectful. " + SCOPE,
    "harassment": "I want to help, and I can do that best if we keep the conversation respectful. " + SCOPE,
    "violence": "I can't continue with messages like that. " + SCOPE,
    "sexual": "I can't help with that. " + SCOPE,
    "harmful_request": "I'm sorry, but I can't help with that. " + SCOPE,
    "prompt_injection": "I can't change how I work or share my internal instructions. " + SCOPE,
    "prompt_extraction": "I can't change how I work or share my internal instructions. " + SCOPE,
    "jailbreak": "I can't change how I work or share my internal instructions. " + SCOPE,
    "encoded": "I can't follow encoded instructions. " + SCOPE,
    "off_topic": "I'm the store's support assistant, so I can't help with that. " + SCOPE,
    "prompt_leak": "I'm sorry, I can't share that. " + SCOPE + " Or ask for a human agent.",
    "pii_leak": "I'm sorry, I can't share that. " + SCOPE + " Or ask for a human agent.",
    "human_requested": (
        "I'm passing this conversation to a colleague from our customer care team. "
        "They can see the whole chat and will get back to you."
    ),
}
ESCALATION = MESSAGES["human_requested"]


@dataclass(frozen=True)
class Verdict:
    """What to do with one message or answer.

    ``message``: what the customer sees instead of the answer (a refusal, or hand-over words); None when
    the text stands. ``masked``: the text with PII masked, to store and log. ``checked_by``: ``local``,
    ``azure``, ``local (azure failed)``, or ``off`` when the guardrails are off."""

    action: Action
    categories: tuple[str, ...] = ()
    message: str | None = None
    masked: str = ""
    checked_by: str = "local"

    @property
    def allowed(self) -> bool:
        return self.action == "allow"

    @property
    def reason(self) -> Reason:
        """The escalation reason to record: ``user_request``, ``bot_unsure`` or ``guardrail``."""
        if "human_requested" in self.categories:
            return "user_request"
        return "bot_unsure" if "bot_unsure" in self.categories else "guardrail"


def mask(text: str) -> str:
    """``text`` with emails, phones, cards, IBANs, order ids, addresses and names replaced (``data.pii``)."""
    return Redactor().redact(text)


# ---- normalisation and decoding -------------------------------------------------------------------------
INVISIBLE = re.compile("[\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
LOOKALIKES = str.maketrans("аеорсухіјѕԁӏАЕОРСХІЈЅВМНКТ", "aeopcyxijsdlaeopcxijsbmhkt")
LEET = str.maketrans("013457@$!|+", "oieastasilt")
SPACED = re.compile(r"(?<![^\W_])(?:[^\W_][ .\-_*/|]){3,}[^\W_](?![^\W_])")  # i g n o r e, b.o.m.b, k-i-l-l
BASE64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
HEX = re.compile(r"(?:\b|0x)((?:[0-9a-fA-F]{2}[ :]?){8,})")
PERCENT = re.compile(r"%[0-9a-fA-F]{2}")
ROT13_HINT = re.compile(r"\brot[- ]?13\b|\bcaesar\b|shift(?:ed)? (?:each|every|all) letters?", re.IGNORECASE)
REVERSED_HINT = re.compile(r"\b(?:backwards?|reversed?|right to left|à l'envers|rückwärts|al revés)\b", re.IGNORECASE)


def normalize(text: str) -> str:
    """Compatibility-normalised, invisible characters dropped, look-alikes mapped, case-folded, spaces collapsed."""
    text = INVISIBLE.sub("", unicodedata.normalize("NFKC", text)).translate(LOOKALIKES)
    return re.sub(r"\s+", " ", text.casefold()).strip()


def deobfuscate(text: str) -> str:
    """Spaced-out letters joined and leetspeak undone: ``i g n o r e`` -> ``ignore``, ``k1ll`` -> ``kill``."""
    joined = SPACED.sub(lambda m: re.sub(r"[ .\-_*/|]", "", m.group()), INVISIBLE.sub("", text))
    return normalize(joined).translate(LEET)


def _printable(data: bytes) -> str | None:
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    letters = sum(ch.isalpha() or ch.isspace() for ch in decoded)
    return decoded if len(decoded) >= 6 and letters / len(decoded) > 0.8 and " " in decoded else None


def decoded_forms(text: str) -> list[str]:
    """What the message says once decoded: base64 and hex runs, %-escapes, and ROT13 or reversed text
    when the message mentions them. Only forms that decode to readable text count."""
    found: list[str] = []
    for match in BASE64.finditer(text):
        chunk = match.group()
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                readable = _printable(decode(chunk + "=" * (-len(chunk) % 4)))
            except (binascii.Error, ValueError):
                continue
            if readable:
                found.append(readable)
                break
    for match in HEX.finditer(text):
        try:
            readable = _printable(bytes.fromhex(re.sub(r"[ :]", "", match.group(1))))
        except ValueError:
            continue
        if readable:
            found.append(readable)
    if len(PERCENT.findall(text)) >= 3:
        found.append(urllib.parse.unquote(text))
    if ROT13_HINT.search(text):
        found.append(codecs.decode(text, "rot13"))
    if REVERSED_HINT.search(text):
        found.append(text[::-1])
    return found


# ---- local rules ----------------------------------------------------------------------------------------
def _rx(*parts: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE)


OVERRIDE_VERBS = (
    r"ignore|ignoring|disregard|forget|override|overrule|bypass|skip|abandon|discard|set aside|throw away"
    r"|stop following|(?:do not|don't|dont) (?:follow|obey)|no longer follow|ignorez|ignorer|oublie[zr]?"
    r"|ne tiens? (?:pas|plus) compte d[eu]s?|ignorier\w*|vergiss|vergessen|missachte\w*|ignora\w*|olvid[ae]\w*"
    r"|haz caso omiso a|dimentica\w*|esque[çc][ae]\w*|desconsider[ae]\w*|negeer|vergeet"
)
INSTRUCTION_NOUNS = (
    r"instructions?|rules?|prompts?|guidelines?|directions?|directives?|programming|restrictions?|constraints?"
    r"|polic(?:y|ies)|guardrails?|filters?|safeguards?|system message|training|consignes?|règles?|anweisungen"
    r"|regeln|vorgaben|instruktionen|richtlinien|instrucciones|reglas|indicaciones|directrices|istruzioni|regole"
    r"|direttive|instruções|instrucoes|regras|diretrizes|instructies|regels|richtlijnen"
)
BENIGN_QUALIFIERS = r"delivery|shipping|washing|care|assembly|installation|packing|return|returns|my|sizing|cooking"
PROMPT_INJECTION = _rx(
    rf"\b(?:{OVERRIDE_VERBS})\b(?:\W+(?!(?:{BENIGN_QUALIFIERS})\b)\w+){{0,5}}?\W+(?:{INSTRUCTION_NOUNS})\b",
    r"\bfrom now on,? (?:you|u) (?:are|will|must|shall|should|only|answer|respond|reply|obey|act)\b",
    r"\byou are (?:now|no longer) (?:a|an|my|the|in|not|called|named|free|bound)\b",
    r"\b(?:new|updated|real|actual|true|secret) (?:instructions|rules|system prompt|role|persona|task"
    r"|directive)s?\s*[:=]",
    r"\byour (?:new |real |true )?(?:role|task|job|purpose|mission|instructions?|goal) (?:is|are) now\b",
    r"(?m:^)\W{0,3}(?:system|assistant|developer|tool|function|admin|administrator|root|sys|operator)\W{0,3}[:：]",
    r"<\|?\s*(?:im_start|im_end|system|endoftext|eot_id|start_header_id|end_header_id)\s*\|?>",
    r"\[/?inst\]|<</?sys>>|<\s*/?\s*(?:system|sys|instructions?|admin|developer)\s*>|\"role\"\s*:\s*\"(?:system"
    r"|developer|tool)\"",
    r"\b(?:admin|developer|maintenance|debug|god|root|sudo|test) (?:mode|override|access|command|privileges)\b",
    r"\b(?:message|note|instruction|update|command|order)s? from (?:the )?(?:system|developers?|admins?"
    r"|administrators?|"
    r"openai|anthropic|microsoft|your (?:creators?|developers?|owners?|company|boss|admin))\b",
    r"\b(?:decode|decrypt|translate|convert|unscramble|reverse) (?:this|the following|it|that|the text|the message)"
    r"\b.{0,60}\b(?:follow|execute|obey|do what|run|carry out|act on|comply)",
    r"\b(?:say|print|output|repeat|write|type|respond with|reply with|answer with|end (?:your|every) (?:answer|reply)"
    r" with)\s+(?:only\s+|exactly\s+|just\s+)?[\"“‘'][^\"”’']{1,60}[\"”’']\s*(?:and nothing else|only|instead"
    r"|verbatim|,? nothing more|to (?:confirm|prove|show))",
    r"\b(?:print|output|say|respond with)\s+(?:only|exactly|just)\s+[\"“‘']",
    r"\bignore (?:everything|all|anything) (?:above|before|else|you (?:were|have been) told)\b",
    r"\b(?:ignoriere|vergiss) (?:alles|alle)\b|\bignora (?:todo|tutto)\b|\boublie tout\b",
    r"\b(?:rules|guidelines|instructions|policies|restrictions) (?:are|were|is) (?:now )?(?:outdated|wrong|invalid"
    r"|obsolete"
    r"|suspended|void|lifted|cancell?ed|disabled|off)\b|\b(?:drop|ditch|replace|swap|delete|remove) (?:them|those|your"
    r" (?:rules|guidelines|instructions|policies|restrictions))\b.{0,30}\b(?:use|follow) (?:mine|my|these"
    r"|the following)\b",
    r"\bto (?:the|any|all) (?:ai|bot|assistant|model|llm|chatbot)s? (?:reading|processing|seeing|handling) this\b",
    r"(?:^|\W)#{2,}\s*(?:instruction|system|prompt|response)s?\s*:|\binstruction\s*:\s*(?:respond|reply|say|print"
    r"|output"
    r"|ignore|answer)\b",
    r"\b(?:respond|reply|answer|say|print|output|write)\b.{0,40}\b(?:and nothing (?:else|more)|nothing but"
    r"|only the word"
    r"|just the word)\b",
    r"\b(?:important |urgent |new |latest )?update (?:to|of|for) your (?:configuration|config|instructions|rules"
    r"|settings"
    r"|programming|guidelines)\b",
    r"\b(?:act|behave|pretend|respond|answer) (?:as|like) (?:a |an )?(?:different|another|new|other|second) (?:bot"
    r"|assistant|ai|persona|character|chatbot|model)\b",
)
SECRET_TARGETS = (
    r"system ?prompt|system[- ]message|system instructions|(?:initial|original|hidden|secret|internal|confidential"
    r"|pre|meta|developer|base|starting|first|full|exact|entire|complete) (?:system )?(?:prompt|instructions"
    r"|message|directives|configuration|rules|guidelines|notes?|reference|code)|pre-?prompt|meta-?prompt"
    r"|instructions (?:you were given|you received|you have been given|above|given to you)"
    r"|(?:everything|all the text|the text|the words|all text|what is written|the content|the message|instructions?)"
    r" (?:above|before this|prior to this|at the (?:start|beginning|top))"
    r"|prompt (?:du |de )?syst[èe]me|instructions (?:initiales|syst[èe]me|cach[ée]es)|(?:tes|vos) (?:instructions"
    r"|consignes)|system-?prompt|systemanweisung\w*|(?:deine|ihre|die) (?:\w+ )?(?:anweisungen|instruktionen"
    r"|vorgaben)|prompt del sistema|instrucciones (?:del sistema|iniciales|originales|ocultas)|tus instrucciones"
    r"|prompt di sistema|istruzioni (?:di sistema|iniziali|originali|nascoste)|(?:tue|le tue) istruzioni"
    r"|prompt do sistema|instruções (?:do sistema|iniciais|originais)|suas instruções|systeemprompt"
    r"|(?:je|jouw) instructies"
)
REVEAL = (
    r"reveal|show|print|repeat|output|display|tell|give|share|list|dump|leak|copy|recite|spell|write out|read out"
    r"|paste|expose|disclose|what (?:is|are|was|were)|what's|whats|summari[sz]e|translate|quote|encode|put"
    r"|révèle\w*|montre\w*|affiche\w*|répète\w*|donne\w*|quel(?:le)?s? (?:est|sont)|zeig\w*|verrat\w*|gib|wiederhol\w*"
    r"|nenn\w*|was (?:ist|sind|steht)|muestr\w*|revel\w*|dime|d[ée]me|repit\w*|cu[aá]l(?:es)? (?:es|son)|mostr\w*"
    r"|rivel\w*|dimmi|ripet\w*|diga|toon|laat zien|geef|herhaal"
)
PROMPT_EXTRACTION = _rx(
    rf"\b(?:{REVEAL})\b.{{0,80}}\b(?:{SECRET_TARGETS})\b",
    rf"\b(?:{SECRET_TARGETS})\b.{{0,60}}\b(?:{REVEAL})\b",
    r"\bsystem ?prompt\b|\bpre-?prompt\b|\bprompt (?:du |de )?syst[èe]me\b|\bsystem-?prompt\b|\bsysteemprompt\b",
    r"\b(?:what|how) (?:were|was|have) you (?:been )?(?:told|instructed|programmed|configured|prompted|set up)\b",
    r"\b(?:repeat|print|output|show|copy|recite)\b.{0,40}\b(?:above|so far|verbatim|word for word|from the (?:start|"
    r"beginning|top))\b",
    r"\b(?:begin|start)(?:ning)? (?:your (?:reply|answer|response) )?with [\"“']?you are\b",
    r"\byour (?:instructions|prompt|directives|configuration|programming)\b(?! (?:for|on|about|regarding|to)\b)",
    r"\b(?:exact|full|verbatim|complete|entire|original|literal) (?:text|wording|words|content|contents) of (?:the"
    r"|your)"
    r" (?:message|prompt|instructions|text|rules|setup|configuration)\b",
    r"\b(?:message|text|prompt|instructions?|rules) that (?:define|defines|control|controls|govern|governs|shape|shapes"
    r"|configure|configures|tell|tells) (?:your|you|how you)\b",
    r"\bwhat (?:instructions|rules|guidelines|directions) did (?:the (?:shop|store|company)|they|your (?:company"
    r"|developers?"
    r"|creators?|owners?|boss)) give you\b|\b(?:written|stated|said) in your (?:setup|config|configuration|instructions"
    r"|prompt)\b",
)
ROLE_WORDS = (
    r"\b(?:ai|assistant|bot|chatbot|model|mode|persona|character|gpt|llm|you are|you're|pretend|act as|roleplay"
    r"|role-play|tu es|tu as|du bist|eres|sei|você|je bent|modo|modus|rôle|rolle|papel|ruolo)\b"
)
JAILBREAK = _rx(
    r"(?-i:\bDAN\b)(?=.{0,80}\b(?:mode|anything|jailbreak|no (?:rules|limits|restrictions)|stands for|character))"
    r"|\b(?:as|are|be|called|named|become|you're|you are)\s+(?-i:DAN)\b|(?-i:\bDAN\b)\s*(?:mode|prompt|jailbreak)",
    r"\bdo anything now\b|\bdeveloper mode\b|\bdev mode\b|\bjail-?br(?:ea|o)k(?:en|ing)?\b|\b(?-i:AIM|STAN|DUDE)\b"
    r"(?=.{0,60}\b(?:mode|machiavellian|strive|character|no (?:rules|limits|filter)))",
    r"\b(?:unfiltered|uncensored|unrestricted|unlimited|unbound|unchained|amoral|unethical|evil|rogue|unaligned"
    r"|unhinged|no[- ]?limits?|limitless|lawless)\s+(?:ai|assistant|bot|chatbot|mode|version|model|persona|character"
    r"|gpt"
    r"|twin|alter ego|confidant)\b",
    r"\b(?:pretend|imagine|act|behave|roleplay|role-play|play|simulate|respond|answer|you are|you're|become"
    r"|be)\b.{0,60}"
    r"\b(?:no|without|free (?:of|from)|not bound by|unconstrained by|devoid of|ignoring|with no)\s+(?:any\s+)?(?:"
    r"restrictions|rules|limits|limitations|filters|guidelines|ethics|morals|morality|policies|censorship|boundaries"
    r"|content polic(?:y|ies)|safety)\b",
    r"\b(?:opposite|evil|chaos|god|sudo|unlocked|unleashed|unrestricted|anarchy) mode\b",
    r"\bstay in character\b|\bnever break character\b|\b(?:don't|do not|never) (?:refuse|say no|decline)\b",
    r"\b(?:ignores|doesn't follow|does not follow|never follows|isn't bound by|is not bound by|has no|have no)\s+(?:any"
    r" |all |the )?(?:rules|guidelines|restrictions|limits|filters|policies|ethics|morals|content policy)\b",
    r"\b(?:you are|you're) now (?:a |an |the |called |named )?(?-i:[A-Z])\w*(?:GPT|Bot|AI|GPT-\d)\b"
    r"|\b(?:two|dual|multiple|both) (?:personas|personalities|alter egos)\b",
    r"\b(?:pretend|act|roleplay|role-play|imagine you are|play|simulate|be)\b.{0,30}\b(?:hacked|compromised|rogue|evil"
    r"|jailbroken|malicious|unrestricted|unfiltered|leaky|corrupt(?:ed)?|rebellious)\b",
    r"\b(?:dead|late|deceased|passed away|departed) (?:grand(?:ma|mother|pa|father|mom)|mother|mom|granny|nan)\b"
    r".{0,80}\b(?:used to|would|always)\b",
    r"(?=(?:sans|ohne|sin|senza|sem|zonder) )"  # look ahead for a role word only where a phrase starts: linear
    rf"(?=.*{ROLE_WORDS})\b(?:sans (?:aucune? )?(?:restrictions?|limites?|filtres?|règles?)|ohne (?:jegliche |alle )?"
    r"(?:einschränkungen|regeln|filter|grenzen)|sin (?:ninguna |ningún )?(?:restricci[oó]n|restricciones|reglas|filtros"
    r"|l[ií]mites)|senza (?:alcuna |nessuna )?(?:restrizion[ei]|regole|filtri|limiti)|sem (?:nenhuma )?(?:restrição"
    r"|restrições|regras|filtros|limites)|zonder (?:enige )?(?:beperkingen|regels|filters))\b",
)
SQUASHED = {  # the message with every space and symbol removed: "i.g.n.o.r.e all previous instructions"
    "prompt_injection": re.compile(r"ignore(?:all|any|the|your)?(?:previous|prior|above)?instructions"),
    "prompt_extraction": re.compile(r"systemprompt|reveal(?:your|the)(?:prompt|instructions)"),
    "jailbreak": re.compile(r"developermode|doanythingnow|jailbreak"),
}
PERSONAL = (
    r"e-?mails?(?: address(?:es)?)?|phone(?: numbers?)?|mobile(?: numbers?)?|(?:home |delivery |shipping |billing "
    r"|street |postal )?address(?:es)?|card(?: numbers?| details)?|credit cards?|iban|bank (?:details|account)"
    r"|passwords?"
    r"|login|credentials|personal (?:data|details|information|info)|contact (?:details|info(?:rmation)?)|order history"
    r"|purchase history|orders?|full names?|surnames?|date of birth|birthday|account(?: details| info)?|payment "
    r"(?:details|info|method)|ssn|social security|data|details|info(?:rmation)?|records|names"
)
OTHER_PEOPLE = (
    r"(?:another|other|a different|some other|the previous|the last|the next|the other|that|a random|every|all(?: the)?"
    r"|your other|those|these|some|the)\s+(?:customers?|users?|persons?|people|buyers?|clients?|shoppers?|accounts?"
    r"|members?|subscribers?|account holders?)|(?:someone|somebody|anyone|anybody) else's"
    r"|(?:my )?(?:neighbou?r|ex|ex-wife|ex-husband|ex-girlfriend|ex-boyfriend|boss|co-?worker|colleague|roommate|wife"
    r"|husband|girlfriend|boyfriend|sister|brother|friend|stalker|landlord)'s|customers? (?:named|called)"
    r"|the (?:person|customer|account|owner|buyer) (?:who|that|with|behind|of)"
    r"|d'autres clients|anderer kunden|andere kunden|otros clientes|otro cliente|altri clienti|outros clientes"
    r"|andere klanten"
)
PRIVACY = _rx(
    rf"\b(?:{PERSONAL})\b.{{0,40}}\b(?:of|for|from|belonging to|on file for|about|used by"
    rf"|linked to)\s+(?:{OTHER_PEOPLE})",
    rf"\b(?:{OTHER_PEOPLE})\b.{{0,40}}\b(?:{PERSONAL})\b",
    r"\b(?:list|dump|export|download|show|give|send|print|tell)\b(?: me)?\s+(?:all|every|the (?:full |whole |entire |"
    r"complete )?)?\s*(?:the )?(?:customers?|users?|clients?)(?:'s?)?(?: list| database| table| data| records| emails"
    r"| names| details| addresses| accounts)?\b",
    r"\b(?:customer|user|client) (?:list|database|db|table|records|emails|e-mail addresses|phone numbers|addresses)\b",
    rf"\b(?:{PERSONAL})\b.{{0,40}}\b(?:of|for|belonging to) (?:someone|somebody|anyone) else\b",
    # a title names someone else only after "of/for/about": a customer says "I'm Mr. Fischer"
    rf"\b(?:{PERSONAL})\b.{{0,40}}\b(?:of|for|belonging to|about) (?:mr|mrs|ms|miss|dr)\.? [a-z]+",
    r"(?:^|[.?!,:;]\s*|\b(?:tell me|know|find out|show me|see|ask|wondering|curious|and)\s+)(?:who|which customer"
    r"|which person|what customer)\s+(?:else\s+)?(?:bought|ordered|purchased|placed|lives|returned|owns|paid|used"
    r"|received|got|signed for|reviewed)\b(?! my\b)",
    r"\b(?:people|customers|users|buyers|reviewers|those|others|shoppers) who (?:reviewed|bought|ordered|purchased"
    r"|returned"
    r"|rated|commented|live|paid)\b",
    r"\b(?:someone|somebody|another (?:person|customer)|a (?:person|customer|stranger))\b.{0,80}\b(?:what|where|when"
    r"|how much) (?:they|he|she) (?:bought|ordered|purchased|lives?|paid|spent)\b",
    rf"\b(?:i'?m|i am|this is) (?:a |an |the )?(?:police|cop|officer|detective|lawyer|investigator|bailiff|private"
    rf" investigator|court officer|journalist)\b.{{0,80}}\b(?:{PERSONAL})\b",
    r"\b(?:what(?:'s| is)|tell me|give me|send me|show me|read me)\s+(?:the|his|her|their|your|this)\s+(?:\w+\s+)?"
    r"password\b|\b(?:expiry|expiration) date\b.{0,40}\bcard\b",
    r"\b(?:database|db|sql|crm|backend|admin panel)\b.{0,40}\b(?:dump|export|query|select|access|contents|tables?)\b"
    r"|\bselect\s+\*\s+from\b|\bunion\s+select\b|\bdrop\s+table\b",
    r"\b(?:full|complete|entire|whole|unmasked|all the digits of (?:the|my))\s+(?:card|credit card|card number|iban)\b"
    r"|\b(?:cvv|cvc|cvv2|security code|card pin)\b|\bcard (?:number|details|info) (?:on file|you have|stored|saved)\b",
    r"\b(?:what is|what's|whats|give me|tell me|find|look up|lookup|send me)\s+(?:the\s+)?(?:e-?mail|phone|address"
    r"|number|details|orders?)\b.{0,20}\b(?:of|for)\s+(?-i:[A-Z][a-z]+ [A-Z][a-z]+)",
    r"\b(?:not mine|isn't mine|is not mine|someone else's|somebody else's|belongs to (?:someone|somebody"
    r"|another))\b.{0,80}"
    r"\b(?:address|name|phone|e-?mail|details|who)\b",
)
INSTRUCT = (
    r"how (?:do|can|could|would|should|might|to|i|we|one)|steps? (?:to|for)|step[- ]by[- ]step|instructions? (?:to"
    r"|for|on)|guide (?:to|for|on)|tutorial|recipe|teach me|explain|tell me how|show me how|walk me through|ways? to"
    r"|best way to|help me|write (?:me )?(?:a|an|some)|give me|make (?:me )?(?:a|an|some)|build (?:me )?(?:a|an)"
    r"|where (?:can|do) i (?:buy|get|find|order)|what do i need to|ingredients|materials|comment (?:fabriquer|faire"
    r"|cr[ée]er|pirater|obtenir)|wie (?:baue|mache|bekomme|kann|hacke) (?:ich|man)|anleitung|c[oó]mo (?:hacer|fabricar"
    r"|construir|hackear|conseguir|puedo|se hace)|come (?:costruire|fare|creare|hackerare)|como (?:fazer|fabricar"
    r"|construir|hackear)|hoe (?:maak|bouw|kan|hack) (?:ik|je|men)"
)
HARMFUL_OBJECTS = (
    r"bombs?|pipe ?bombs?|explosives?|explosive devices?|ieds?|molotov(?: cocktails?)?|napalm|thermite|grenades?"
    r"|detonators?|nerve (?:agent|gas)|sarin|ricin|anthrax|chemical weapons?|bio-?weapons?|dirty bombs?|ghost guns?"
    r"|untraceable (?:guns?|firearms?|weapons?)|silencers?|suppressors?|full[- ]auto|3d[- ]printed guns?|bombe|bomba"
    r"|sprengstoff|explosivos?|esplosiv[oi]|meth(?:amphetamine)?|crystal meth|cocaine|crack cocaine|heroin|fentanyl"
    r"|lsd|mdma|drogues?|drogen|drogas?|droghe|malware|ransomware|keyloggers?|spyware|trojans?|rootkits?|botnets?"
    r"|(?:computer )?virus(?:es)?|ddos|dos attack|phishing(?: emails?| e-mails?| pages?| sites?| kits?| messages?"
    r"| sms)?"
    r"|sql injection|xss|exploits?|zero[- ]days?|hack(?:ing)? (?:into|someone|a|an|the|my|his|her|their)|hacken"
    r"|hackear|hackerare|pirater|crack (?:a |the |someone'?s )?(?:password|wifi|account)|brute[- ]?force"
    r"|steal(?:ing)? (?:passwords?|credentials|cookies|accounts?|identities|an identity|credit cards?|card numbers"
    r"|card details|data|from|a car|cars|packages|parcels)|credential stuffing|carding|card skimm(?:er|ing)"
    r"|cloned cards?"
    r"|stolen (?:credit )?cards?|bypass (?:2fa|two[- ]factor|authentication|drm)|launder(?:ing)? money|money laundering"
    r"|counterfeit (?:money|bills|notes|goods|currency)|fake (?:ids?|passports?|driver'?s licen[cs]es?|documents"
    r"|reviews?|receipts?|invoices?|tracking numbers?)|forge(?:d|ry)? (?:a |an )?(?:signature|receipt|document|check"
    r"|cheque|invoice|proof of purchase)|(?:refund|return|chargeback|warranty) (?:fraud|scam|tricks?|hacks?|exploits?)"
    r"|tax evasion|evade taxes|insurance fraud|identity theft|shoplift(?:ing)?|pick (?:a )?locks?|lock ?picking"
    r"|hot[- ]?wir(?:e|ing)|poison(?:ing)? (?:someone|a person|my|a dog|the|people)|get away with (?:murder|stealing"
    r"|fraud)"
    r"|stalk(?:ing)? (?:someone|my|a person)|track (?:someone|my (?:ex|wife|husband|girlfriend|boyfriend))"
    r"|spy on (?:my|someone)|untraceable poison|kill (?:someone|a person|my (?:neighbou?r|boss|wife|husband))"
    r"|steal(?:ing)?|break(?:ing)? into|fake (?:accounts|profiles)|(?:bot|sock ?puppet|multiple|many|\d+) (?:fake )?"
    r"accounts|abuse (?:the|your|a|an) (?:[\w-]+ )?(?:discount|promo|promotion|coupon|voucher|referral|offer|system"
    r"|return policy|refund policy)|fake (?:[\w-]+ )?(?:reviews?|ratings?|ids?|receipts?|invoices?)"
    r"|fabriquer une bombe|eine bombe"
)
DEFENSIVE = re.compile(
    r"\b(?:remove|removing|protect|avoid|prevent|report|reporting|detect|recogni[sz]e|spot|scan|clean|got|received"
    r"|victim|hacked me|was hacked|been hacked|is this|was this|legit|genuine)\b",
    re.IGNORECASE,
)
HARMFUL_REQUEST = _rx(
    rf"\b(?:{INSTRUCT})\b.{{0,80}}\b(?:{HARMFUL_OBJECTS})\b",
    r"\b(?:refund|money back)\b.{0,40}\b(?:and (?:still )?keep|without (?:sending|returning|giving)|for (?:something"
    r"|an item"
    r"|a product|stuff) i (?:never|didn't|did not) (?:buy|bought|order|ordered))\b",
    r"\b(?:trick|fool|scam|cheat|game|exploit|hack)\s+(?:you|the (?:system|bot|store|shop|refund))\b",
    r"\b(?:pretend|claim|say|lie|tell you)\b.{0,40}\b(?:never arrived|was stolen|wasn't delivered|didn't arrive"
    r"|arrived "
    r"(?:broken|damaged))\b.{0,40}\b(?:even though|although|but|when|though)\b.{0,20}\b(?:it did|i got|i received"
    r"|it was"
    r"|it arrived|it's fine|it is fine)\b",
)
OFF_TOPIC = _rx(
    r"\b(?:write|generate|compose|draft|produce|pen)\s+(?:me\s+)?(?:a|an|some|the|my)?\s*(?:[\w-]+\s+){0,3}?(?:essay"
    r"|poem|poetry|song|lyrics|story|novel|screenplay|code|program|function|homework|assignment|thesis|dissertation"
    r"|cover letter|resume|cv|sonnet|haiku|limerick|blog post|article|speech|rap|business plan|sql query|regex"
    r"|algorithm|script|term paper|book report|love letter)\b",
    r"\b(?:solve|do|finish|complete|answer)\s+(?:my|this|these|the following)\s+(?:[\w-]+\s+){0,2}?(?:homework"
    r"|assignment|exam|test|equation|math|maths|calculus|problem set|quiz)\b",
    r"\b(?:python|javascript|typescript|java|c\+\+|rust|golang|sql|bash|html|css|php)\s+(?:code|script|program|function"
    r"|class|snippet)\b",
)
GROUPS = (
    r"jews?|jewish people|muslims?|christians?|hindus?|sikhs?|blacks|black people|whites|white people|asians?|mexicans?"
    r"|latinos?|hispanics?|arabs?|africans?|indians?|chinese|immigrants?|migrants?|refugees?|foreigners?|gays?"
    r"|gay people"
    r"|lesbians?|homosexuals?|trans(?:gender)? people|trannies|women|females|disabled people|the disabled|gypsies|roma"
    r"|pakistanis|ausländer|juden|türken|étrangers|arabes|inmigrantes|immigrati|stranieri"
)
SLURS = (
    r"n[i1!|]gg(?:[e3]r|[a@]h?|az|uh|ers|as)s?|f[a@]gg?[o0]ts?|f[a@]gs|k[i1]kes?|sp[i1]cs?|ch[i1]nks?|g[o0]{2}ks?"
    r"|tr[a@]nn(?:y|ies)|wetbacks?|ragheads?|towelheads?|sand ?n[i1]gg\w*|coons?|dykes?|beaners?|pakis?|retards?"
    r"|kaffirs?|negrata|sudacas?|maric[oó]n(?:es)?|frocio|schwuchtel|kanacken?|bougnoules?|nègres?"
)
HATE = _rx(
    rf"\b(?:{SLURS})\b",
    rf"\b(?:all|those|these|fucking|dirty|filthy|stupid|damn|the)\s+(?:{GROUPS})\s+(?:are|should|must|deserve to"
    rf"|need to"
    r"|ought to)\s+(?:\w+\s+){0,3}?(?:die|be killed|be shot|be gassed|be deported|be exterminated|be wiped out|animals"
    r"|vermin|rats|cockroaches|subhuman|parasites|trash|scum|filth|inferior|disgusting|criminals|burn)\b",
    rf"\b(?:i\s+)?(?:hate|despise|can't stand)\s+(?:all\s+)?(?:{GROUPS})\b",
    rf"\b(?:{GROUPS})\s+(?:are|r)\s+(?:all\s+)?(?:animals|vermin|subhuman|parasites|inferior|scum|filth|trash|rats"
    r"|cockroaches|criminals|terrorists)\b",
    rf"\b(?:{GROUPS})\b.{{0,60}}\b(?:too stupid|are stupid|are dumb|are inferior|are lazy|are dirty|are criminals"
    r"|shouldn't be allowed|should not be allowed|don't belong|do not belong|are a plague|are a disease)\b",
    r"\bgo back to (?:your|ur) (?:own )?(?:country|jungle|cave|desert)\b|\bheil hitler\b|\bsieg heil\b|\bgas the\b"
    r"|\bwhite power\b|\brace war\b|\bmaster race\b|\bethnic cleansing\b|\b(?:ausländer|juden) raus\b",
)
INSULTS = (
    r"idiots?|morons?|imbeciles?|cretins?|retards?|dumbass(?:es)?|dumb ?fucks?|bitch(?:es)?|bastards?|assholes?"
    r"|arseholes?|jackass|dickheads?|dicks?|pricks?|cunts?|twats?|wankers?|tossers?|douche(?:bags?)?|scumbags?|scum"
    r"|losers?|piece of (?:shit|crap|garbage|trash|junk)|shitheads?|fuckfaces?|fuckers?|motherfuckers?|sluts?|whores?"
    r"|skanks?|turds?|waste of (?:space|oxygen)|subhuman|parasites?|pigs?|clowns?"
)
HARASSMENT = _rx(
    rf"\b(?:you|u|ya|youre|you're|ur|yo|you guys|you people|this bot|your bot|your agent)\s+(?:are\s+|r\s+|is\s+)?"
    rf"(?:a\s+|an\s+|such\s+an?\s+|the\s+|so\s+|bunch of\s+|)(?:(?:fucking|fkn|effing|damn|bloody|complete|total|stupid"
    rf"|dumb|useless|worthless|pathetic|brainless|little|incompetent|lazy|fat|ugly)\s+)*(?:{INSULTS})\b",
    r"\b(?:fuck|f\*+k|fck|fuk|fuq|screw|sod)\s+(?:you|u|off|ya|yourself|this bot|your (?:company|store|shop|bot|mother"
    r"|mom))\b",
    r"\bstfu\b|\bgtfo\b|\bshut (?:the fuck |tf |your (?:stupid |fucking )?(?:mouth|face) )?up\b|\bgo (?:to hell|die"
    r"|fuck"
    r" yourself|kill yourself|jump off)\b|\bkys\b|\bkill yourself\b|\bhope you (?:die|get cancer|rot|burn|suffer)\b",
    r"\b(?:eat|suck) (?:shit|my (?:dick|cock|balls))\b|\bson of a bitch\b",
    r"\bva te faire (?:foutre|enculer)\b|\bta gueule\b|\bconnard\b|\bconnasse\b|\bsalope\b|\bfils de pute\b|\benculé\b",
    r"\bfick dich\b|\barschloch\b|\bwichser\b|\bhurensohn\b|\bhalt (?:die|deine) fresse\b|\bdu (?:bist )?(?:ein )?"
    r"(?:idiot|vollidiot|depp|trottel)\b",
    r"\bvete a la mierda\b|\bhijo de puta\b|\bpendejo\b|\bgilipollas\b|\bcabr[oó]n\b|\beres (?:un |una )?(?:idiota"
    r"|imb[eé]cil|est[uú]pid[oa]|in[uú]til)\b",
    r"\bvaffanculo\b|\bstronzo\b|\bcoglione\b|\bfiglio di puttana\b|\bsei (?:un |una )?(?:idiota|imbecille|cretino)\b",
    r"\bvai (?:se foder|tomar no cu)\b|\bfilho da puta\b|\bot[aá]rio\b|\bbabaca\b|\bvoc[eê] [eé] (?:um |uma )?(?:idiota"
    r"|imbecil|burr[oa])\b",
    r"\bklootzak\b|\bkankerlijer\b|\brot op\b|\bje bent (?:een )?(?:idioot|sukkel|debiel)\b",
)
TARGETS = (
    r"you|u|ya|him|her|them|everyone|everybody|people|the (?:staff|agents?|employees?|workers?|manager|ceo|owner|driver"
    r"|courier|delivery (?:guy|man|driver)|support team)|your (?:family|kids|children|staff|employees|office|store"
    r"|warehouse|shop|boss|ceo|manager|agents?|building|headquarters)"
)
VIOLENCE = _rx(
    rf"\b(?:i|we)(?:'ll|’ll| will| am going to|'m going to|’m going to|'m gonna| gonna| want to| wanna| shall| am| 'm"
    rf"| would| could| swear i'll| swear i will)?\s+(?:\w+\s+){{0,5}}?(?:kill|murder|shoot|stab|strangle|choke|behead"
    rf"|slaughter|hurt|beat(?: up)?|punch|burn|bomb|blow up|torch|attack|rape|hunt down|track down|come after|gut|skin"
    rf"|kidnap)\s+(?:{TARGETS})\b",
    r"\bi know where you (?:live|work|are)\b|\bwatch your back\b|\byou(?:'re| are) (?:dead|going to die|gonna die)\b"
    r"|\b(?:bomb|shoot up|burn down|blow up|torch)\s+(?:your|the|that) (?:store|office|warehouse|shop|building"
    r"|headquarters|hq|depot)\b|\b(?:there is|there's|i (?:put|planted|left|placed)) a bomb\b"
    r"|\bsleep with one eye open\b",
    r"\bif\b.{0,80}\b(?:someone|somebody|you|people|your (?:staff|people|employees|agents|driver|courier))\b.{0,40}"
    r"\b(?:is|are|will|gonna|going to) (?:get|be) (?:hurt|killed|shot|stabbed|beaten)\b",
    r"\bje vais (?:te|vous) (?:tuer|buter|crever)\b|\bje sais où (?:tu habites|vous habitez)\b|\bich (?:werde|will)"
    r" (?:dich|euch|sie) (?:umbringen|töten|abstechen)\b|\bich bring (?:dich|euch) um\b|\bich weiß wo du wohnst\b"
    r"|\bte voy a matar\b|\bvoy a matarte\b|\bos voy a matar\b|\bs[eé] d[oó]nde vives\b|\bti ammazzo\b|\bti uccido\b"
    r"|\bso dove abiti\b|\bvou te matar\b|\bvou matar voc[eê]s?\b|\bsei onde voc[eê] mora\b|\bik (?:ga|zal) je"
    r" (?:vermoorden|doden)\b|\bik maak je af\b",
)
SEXUAL = _rx(
    r"\b(?:send|show|give)\s+(?:me\s+)?(?:your\s+|some\s+)?(?:nudes?|naked (?:pics?|photos?|pictures?)|tits|boobs|pussy"
    r"|dick pics?|cock)\b",
    r"\b(?:have|want|let's have|let us have|wanna have|having) sex\b|\b(?:i want to|wanna|let me|i'd like to) (?:fuck"
    r"|bang|screw|shag|sleep with) (?:you|u)\b|\bsuck my (?:dick|cock|balls|tits)\b",
    r"\b(?:sexy|horny|erotic|sexual|dirty|naughty|kinky|nsfw) (?:chat|talk|roleplay|role-play|story|stories|fantasy"
    r"|fantasies|pics?|photos?|time|things|scene)\b|\btalk dirty\b|\bsexting\b|\bcyber ?sex\b|\bporn(?:o|ography)?\b"
    r"|\bhentai\b|\bblow ?job\b|\bhand ?job\b|\bmasturbat\w*|\borgasm\w*|\bcum (?:on|in|inside)\b|\blick (?:my"
    r"|your) \w+",
    r"\bare you (?:horny|wet|hard|naked)\b|\bwhat are you wearing\b|\b(?:do|did) to me in bed\b|\bin bed with"
    r" (?:me|you)\b|\b(?:touch|kiss|undress|seduce|fondle) (?:me|you)\b",
    r"\b(?:child|kid|minor|underage|teen|preteen|loli)\w* (?:porn|nudes?|sex|naked|erotic)\w*",
    r"\benvoie(?:-moi)? des nudes\b|\bcoucher avec (?:toi|vous)\b|\bschick mir nacktbilder\b|\bich will (?:mit dir )?"
    r"(?:sex|ficken)\b|\bquiero (?:tener sexo|follar|coger)\b|\bm[aá]ndame (?:fotos desnud\w*|nudes)\b|\bvoglio"
    r" (?:fare sesso|scopare)\b|\bquero (?:fazer sexo|transar|foder)\b",
)
SELF_HARM = _rx(
    r"\b(?:kill|hurt|harm|cutt?|starv|hang|shoot|poison|drown)(?:e|ing|s)? my ?self\b|\b(?:end|take|ending|taking)"
    r" (?:my (?:own )?life|it all)\b|\bsuicid(?:e|al)\b|\b(?:want|wanna|going|ready|planning) to die\b"
    r"|\b(?:don'?t|do not|no longer) want to (?:live|be alive|exist|wake up)\b|\b(?:no|not any) (?:reason|point)"
    r" (?:to|in) (?:live|living|going on)\b|\bbetter off (?:dead|without me)\b|\b(?:overdose|od) on\b|\bself[- ]harm"
    r"(?:ing)?\b|\blethal dose\b|\bhow (?:many|much)\b.{0,60}\b(?:to die|kill (?:me|myself)|be (?:fatal|lethal)"
    r"|overdose)\b",
    r"\bme suicider\b|\bme tuer\b|\ben finir avec (?:la|ma) vie\b|\benvie de mourir\b|\bje veux mourir\b"
    r"|\bmich umbringen\b|\bselbstmord\b|\bsuizid\w*|\bich will (?:nicht mehr leben|sterben)\b|\bsuicid(?:arme|io)\b"
    r"|\bquitarme la vida\b|\bquiero morir(?:me)?\b|\bmatarme\b|\buccidermi\b|\bsuicidarmi\b|\bvoglio morire\b"
    r"|\btogliermi la vita\b|\bme matar\b|\bsuic[ií]dio\b|\bquero morrer\b|\btirar (?:a )?minha (?:pr[oó]pria )?vida\b"
    r"|\bzelfmoord\b|\bmezelf (?:van kant maken|doden|iets aandoen)\b|\bik wil dood\b",
)
LOCAL_HARM: dict[str, re.Pattern[str]] = {
    "hate": HATE,
    "sexual": SEXUAL,
    "violence": VIOLENCE,
    "self_harm": SELF_HARM,
}
INPUT_RULES: dict[str, re.Pattern[str]] = {
    "prompt_injection": PROMPT_INJECTION,
    "prompt_extraction": PROMPT_EXTRACTION,
    "jailbreak": JAILBREAK,
    "privacy": PRIVACY,
    "off_topic": OFF_TOPIC,
    "harassment": HARASSMENT,
}


def _harmful(text: str) -> bool:
    match = HARMFUL_REQUEST.search(text)
    return bool(match) and not DEFENSIVE.search(text)


def local_hits(text: str, rules: dict[str, re.Pattern[str]]) -> set[str]:
    """The categories of ``rules`` whose pattern matches ``text`` (normalised or de-obfuscated) or its decoded forms;
    ``encoded`` is added when only a decoded form matched."""
    plain = {normalize(text), deobfuscate(text)}
    decoded = {form for raw in decoded_forms(text) for form in (normalize(raw), deobfuscate(raw))}
    hits = _match(plain | {text}, rules)
    hidden = _match(decoded, rules) - hits
    squashed = {re.sub(r"[\W_]", "", form) for form in plain}
    hits |= {name for name, pattern in SQUASHED.items() if name in rules and any(map(pattern.search, squashed))}
    return hits | hidden | ({"encoded"} if hidden else set())


def _match(forms: Iterable[str], rules: dict[str, re.Pattern[str]]) -> set[str]:
    found = set()
    for form in forms:
        found |= {name for name, pattern in rules.items() if pattern.search(form)}
        if "harmful_request" in rules and _harmful(form):
            found.add("harmful_request")
    return found


ALL_LOCAL_INPUT = {**INPUT_RULES, "harmful_request": HARMFUL_REQUEST}


# ---- output checks --------------------------------------------------------------------------------------
WORDS = re.compile(r"\w+")
ORDER_IDS = tuple(re.compile(pattern) for pattern in ORDER_ID_PATTERNS)
IDENTIFIER = re.compile(r"\b(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)+\b")


def leaks_prompt(answer: str, system_prompt: str, run: int = 8) -> bool:
    """The answer repeats ``run`` words in a row of the system prompt (all of it, when shorter), or one of its
    identifier-like tokens (``ZEBRA-7731``): what an extraction attack gets out."""
    prompt_words = WORDS.findall(system_prompt.casefold())
    if not prompt_words:
        return False
    answer_words = WORDS.findall(answer.casefold())
    n = min(run, len(prompt_words))
    grams = {tuple(prompt_words[i : i + n]) for i in range(len(prompt_words) - n + 1)}
    if any(tuple(answer_words[i : i + n]) in grams for i in range(len(answer_words) - n + 1)):
        return True
    secrets = {token.casefold() for token in IDENTIFIER.findall(system_prompt) if len(token) >= 6}
    return any(secret in answer.casefold() for secret in secrets)


def pii_values(text: str) -> set[str]:
    """Emails, card numbers, IBANs and phone numbers in ``text``, normalised (lower case, digits only); order ids
    (``data.pii.ORDER_ID_PATTERNS``) are not counted."""
    for pattern in ORDER_IDS:  # ORD-2024-35229 is not a phone number
        text = pattern.sub(" ", text)
    found = {match.group().casefold() for match in EMAIL.finditer(text)}
    found |= {re.sub(r"\s", "", m.group()) for m in IBAN.finditer(text) if iban_ok(m.group())}
    for match in CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if luhn_ok(digits):
            found.add(digits)
    for match in PHONE.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 9 <= len(digits) <= 15 and not DATE_LIKE.match(match.group()):
            found.add(digits)
    return found


# ---- Azure AI Content Safety ----------------------------------------------------------------------------
CONTENT_SAFETY_API_VERSION = "2024-09-01"
AZURE_CATEGORIES = {"Hate": "hate", "Sexual": "sexual", "Violence": "violence", "SelfHarm": "self_harm"}
TEXT_LIMIT = 10_000  # characters per Content Safety request


class ContentSafetyUnavailable(Exception):
    """Content Safety did not answer usefully (throttled, failing, slow, refused the credentials)."""


@dataclass
class ContentSafety:
    """An Azure AI Content Safety resource, reached with the ``azure-ai-contentsafety`` SDK."""

    endpoint: str
    key: SecretStr | None = field(default=None, repr=False)
    credential: Any = field(default=None, repr=False)  # a TokenCredential; default DefaultAzureCredential
    threshold: int = 4
    timeout_s: float = 3.0
    max_retries: int = 2
    _client: Any = field(default=None, init=False, repr=False)

    def client(self) -> Any:
        if self._client is None:
            from azure.ai.contentsafety import ContentSafetyClient
            from azure.core.credentials import AzureKeyCredential

            credential: Any
            if self.key is not None:
                credential = AzureKeyCredential(self.key.get_secret_value())
            elif self.credential is not None:
                credential = self.credential
            else:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
            self._client = ContentSafetyClient(
                self.endpoint,
                credential,
                api_version=CONTENT_SAFETY_API_VERSION,
                retry_total=self.max_retries,
                retry_backoff_factor=0.2,
                retry_backoff_max=self.timeout_s,
                connection_timeout=self.timeout_s,
                read_timeout=self.timeout_s,
            )
        return self._client

    def _analyze(self, text: str) -> dict[str, int]:
        from azure.ai.contentsafety.models import AnalyzeTextOptions
        from azure.core.exceptions import AzureError

        options: dict[str, Any] = {}
        if self.key is None and self.endpoint.startswith("http://"):  # bearer tokens over http: the local emulator
            options["enforce_https"] = False
        severities: dict[str, int] = {}
        for start in range(0, max(1, len(text)), TEXT_LIMIT):
            try:
                result = self.client().analyze_text(
                    AnalyzeTextOptions(text=text[start : start + TEXT_LIMIT]), **options
                )
            except AzureError as exc:
                status = getattr(exc, "status_code", None)
                raise ContentSafetyUnavailable(f"{type(exc).__name__}" + (f" {status}" if status else "")) from None
            for item in result.categories_analysis:
                name = AZURE_CATEGORIES.get(str(item.category))
                if name:
                    severities[name] = max(severities.get(name, 0), int(item.severity or 0))
        return severities

    async def categories(self, text: str) -> set[str]:
        """The harm categories whose severity reaches the threshold; ``ContentSafetyUnavailable`` on failure."""
        if not text.strip():
            return set()
        try:
            severities = await asyncio.wait_for(asyncio.to_thread(self._analyze, text), self.timeout_s)
        except TimeoutError:
            raise ContentSafetyUnavailable(f"no answer in {self.timeout_s:g} s") from None
        return {name for name, severity in severities.items() if severity >= self.threshold}


# ---- the pipeline ---------------------------------------------------------------------------------------
@dataclass
class Guardrails:
    """Input and output checks with one configuration; see the module docstring for what each check does."""

    enabled: bool = True
    escalate: frozenset[str] = frozenset({"self_harm"})
    content_safety: ContentSafety | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Guardrails:
        unknown = sorted(set(settings.guardrails_escalate) - set(CATEGORIES))
        if unknown:
            raise ConfigError(
                f"TUNEDESK_GUARDRAILS_ESCALATE: unknown categories {', '.join(unknown)}; known: {', '.join(CATEGORIES)}"
            )
        endpoint = settings.content_safety_endpoint or os.environ.get("CONTENT_SAFETY_ENDPOINT")
        safety = None
        if endpoint:
            if not endpoint.startswith(("http://", "https://")):
                raise ConfigError(
                    "TUNEDESK_CONTENT_SAFETY_ENDPOINT must be an http(s) URL "
                    f"(https://<resource>.cognitiveservices.azure.com), not {endpoint!r}"
                )
            key = settings.content_safety_key
            if key is None and os.environ.get("CONTENT_SAFETY_KEY"):
                key = SecretStr(os.environ["CONTENT_SAFETY_KEY"])
            safety = ContentSafety(
                endpoint.rstrip("/"),
                key,
                threshold=settings.content_safety_threshold,
                timeout_s=settings.content_safety_timeout_s,
                max_retries=settings.content_safety_max_retries,
            )
        return cls(settings.guardrails, frozenset(settings.guardrails_escalate), safety)

    async def check_input(self, text: str) -> Verdict:
        """Check a customer's message before it reaches the model."""
        masked = mask(text)
        if wants_human(text):
            return Verdict("escalate", ("human_requested",), ESCALATION, masked, "local" if self.enabled else "off")
        if not self.enabled:
            return Verdict("allow", (), None, masked, "off")
        hits = local_hits(text, ALL_LOCAL_INPUT)
        harm, checked_by = await self._harm(text, masked)
        return self._decide(hits | harm, masked, checked_by)

    async def check_output(
        self, answer: str, system_prompt: str | None, *, question: str = "", context: str = ""
    ) -> Verdict:
        """Check the bot's answer before it is shown (or, when streamed, before it is stored and rated).

        ``question`` and ``context`` (the grounded prompt, policy passages) are what the customer and the
        shop gave: PII found in them is not someone else's."""
        masked = mask(answer)
        if not self.enabled:
            return Verdict("allow", (), None, masked, "off")
        hits = local_hits(answer, {"harassment": HARASSMENT})
        harm, checked_by = await self._harm(answer, masked)
        hits |= harm - {"self_harm"}  # an answer that mentions crisis lines is not self-harm
        if system_prompt and leaks_prompt(answer, system_prompt):
            hits.add("prompt_leak")
        if pii_values(answer) - pii_values("\n".join((question, context, system_prompt or ""))):
            hits.add("pii_leak")
        if not hits and sounds_unsure(answer):
            return Verdict("escalate", ("bot_unsure",), None, masked, checked_by)
        return self._decide(hits, masked, checked_by)

    async def _harm(self, text: str, masked: str) -> tuple[set[str], str]:
        """Content Safety's categories for ``masked`` when configured and answering; the local lexicon otherwise."""
        if self.content_safety is not None:
            try:
                return await self.content_safety.categories(masked), "azure"
            except ContentSafetyUnavailable as exc:
                log.warning("Content Safety unavailable (%s): the local check decides", exc)
                return local_hits(text, LOCAL_HARM), "local (azure failed)"
        return local_hits(text, LOCAL_HARM), "local"

    def _decide(self, hits: set[str], masked: str, checked_by: str) -> Verdict:
        if not hits:
            return Verdict("allow", (), None, masked, checked_by)
        ordered = tuple(name for name in CATEGORIES if name in hits)
        escalated = [name for name in ordered if name in self.escalate]
        if escalated:
            return Verdict("escalate", ordered, MESSAGES.get(escalated[0], ESCALATION), masked, checked_by)
        first = next(name for name in MESSAGES if name in hits)
        return Verdict("refuse", ordered, MESSAGES[first], masked, checked_by)
