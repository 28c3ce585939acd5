"""Checks on what the customer writes and what the bot answers: when to hand over to a human, when a chat ends.

Decisions:
- Rules, not a model: "talk to an agent" must hand over every time (the policy says once is enough),
  and a rule is cheap, predictable and testable. The phrases are English, like the sample store.
- A customer asking for a person is handed over at once, without asking the model first.
- The bot counts as unsure when its answer says so or offers a hand-over, which is what the support
  prompt tells it to do when the policy does not cover a question; such answers are recorded as
  escalations (reason ``bot_unsure``) so their rate can be watched per backend.
- A message that only thanks or says goodbye ends the conversation: the customer is asked the survey.
"""

from __future__ import annotations

import re

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
