"""Write ``raw.csv``: synthetic multi-turn support chats of Harbor & Pine, a fictional online store.

    python data/samples/support/generate.py                 # rewrites data/samples/support/raw.csv
    python data/samples/support/generate.py --seed 7 --count 300 --out /tmp/raw.csv

Decisions:
- Standard library only, one ``random.Random(seed)``: the same seed and count write the same bytes.
- Every number an agent quotes comes from ``POLICY``, which mirrors ``policy.md``; the tests check
  that the two agree, so edit both together.
- Text is assembled from many small pools (openers, reasons, products, dates, customer voices,
  optional side questions and extra turns). A conversation whose letter-only word 5-grams overlap an
  earlier one of the same intent with Jaccard >= 0.5 is drawn again, so the near-duplicate step of
  ``tunedesk data prepare`` (0.8 over word 5-grams) removes only the duplicates planted on purpose.
- Customer voices (casual, typos, angry, formal) rewrite the template text only, never the slots, so
  an order id or an email keeps the exact shape the PII redactor looks for.
- Mess is planted in known amounts for the pipeline to clean up: PII (emails, phones, order ids,
  Luhn-valid card numbers, IBANs, street addresses), HTML entities and tags, "Sent from my iPhone"
  lines and ``--`` signatures, consecutive customer turns, trailing customer turns, chats nobody
  answered, exact and near duplicates, and the rows of simultaneous chats interleaved.
- ``--count`` is the number of conversations in the file, planted duplicates included.
- One file on purpose: most of it is phrase pools, and a sample generator should be copyable alone.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tunedesk.files import write_text_atomically

T = TypeVar("T")
HERE = Path(__file__).resolve().parent
DEFAULT_SEED = 2024
DEFAULT_COUNT = 780
HEADER = ("conversation_id", "turn", "speaker", "text", "intent", "resolved")
MAX_TURNS = 8
SIMILAR = 0.5  # letter-only word 5-gram Jaccard at which a new conversation is drawn again
STORE = "Harbor & Pine"

# Mirrors policy.md. Slot names are used as {name} in agent templates.
POLICY: dict[str, str] = {
    "rw": "30",  # return window, days from delivery
    "fee": "6.95",  # return label fee, deducted from the refund (waived for faulty or wrong items)
    "refund_days": "2",  # business days to issue a refund once the return reaches the warehouse
    "bank_days": "5-10",  # business days a bank may take to show a refund
    "std_days": "3-5",  # standard shipping, business days
    "std_fee": "5.99",
    "free_over": "50",  # free standard shipping on orders over this
    "exp_days": "1-2",  # express shipping, business days
    "exp_fee": "14.99",
    "cutoff": "2 pm ET",  # orders placed before this ship the same business day
    "trace_days": "4",  # business days without a tracking scan before a carrier trace
    "lost_days": "10",  # business days past the estimated date before a parcel counts as lost
    "missing_days": "2",  # days to wait when a parcel is marked delivered but not found
    "hold_days": "7",  # days for a bank to release an authorisation hold
    "attempts": "3",  # failed payment attempts before checkout pauses
    "pause_min": "30",  # minutes checkout pauses
    "reset_min": "60",  # minutes a password reset link is valid
    "login_attempts": "5",  # failed sign-ins before an account locks
    "lock_min": "15",  # minutes an account stays locked
    "wy": "2",  # warranty, years from delivery
    "claim_days": "3",  # business days to decide a warranty claim
    "adjust_days": "14",  # days after purchase in which a price drop is refunded
    "wrap_fee": "4.00",  # gift wrap per item
    "human_days": "1",  # business day for the customer care team to answer
    "human_hours": "Monday to Friday, 8 am to 8 pm ET",
}

INTENTS: tuple[str, ...] = (
    "returns", "order_status", "refund", "shipping_delay", "cancellation", "payment_failure",
    "account_access", "product_question", "complaint", "warranty", "escalation_to_human", "small_talk",
)  # fmt: skip


# ----------------------------------------------------------------------------------------------- the world


@dataclass(frozen=True)
class Product:
    name: str
    item: str  # what a customer calls it
    price: float
    kind: str  # apparel, footwear, kitchen, electronics, outdoor, home
    facts: tuple[tuple[str, str], ...]  # (customer question, agent answer)


PRODUCTS: tuple[Product, ...] = (
    Product("Cascade rain jacket", "jacket", 129.0, "apparel", (
        ("is it actually waterproof or just water resistant?",
         "It's fully waterproof: taped seams and a 20,000 mm rated shell, so it handles a whole day of rain."),
        ("does it run small?", "It runs true to size; if you like a fleece underneath, go one size up."))),
    Product("Fjord down vest", "vest", 139.0, "apparel", (
        ("is the down ethically sourced?", "Yes, it's RDS-certified down, so the birds are treated humanely."),
        ("can it pack into its own pocket?", "It stuffs into its left hand pocket, about the size of a can."))),
    Product("Sprout kids' raincoat", "raincoat", 49.0, "apparel", (
        ("what age is the size M for?", "Size M fits roughly ages 5 to 6; the size chart on the page lists heights."),
        ("is there reflective stuff on it?", "Yes, there are reflective strips on the back and both sleeves."))),
    Product("Trail running socks 3-pack", "socks", 24.0, "apparel", (
        ("are these merino?", "They're a merino and nylon blend, so they dry fast and don't hold smells."),
        ("do they come in different thicknesses", "Light cushion only for now, in sizes S to XL."))),
    Product("Ridge hiking boots", "boots", 159.0, "footwear", (
        ("do they need breaking in?", "They're soft out of the box; a couple of short walks is usually plenty."),
        ("do they come in wide?", "They do: pick 'wide' in the width menu on the product page."))),
    Product("Summit 40L backpack", "backpack", 119.0, "outdoor", (
        ("will it fit as carry-on?", "At 55 x 35 x 23 cm it fits most airlines' carry-on limits; check yours."),
        ("does it have a laptop sleeve?", "It has a padded sleeve that takes laptops up to 16 inches."))),
    Product("Basecamp camping stove", "stove", 89.0, "outdoor", (
        ("what fuel does it use", "Standard screw-on isobutane canisters, sold separately."),
        ("can I take it on a plane", "The clean stove is fine in checked luggage, but fuel canisters can't fly."))),
    Product("Canopy 2-person tent", "tent", 249.0, "outdoor", (
        ("how heavy is it packed?", "About 1.8 kg packed, poles and stakes included."),
        ("is it ok for winter camping", "It's a three-season tent: great from spring to autumn, not for heavy snow."))),
    Product("Tide insulated bottle", "bottle", 32.0, "outdoor", (
        ("is it dishwasher safe?", "The lid is top-rack safe; wash the bottle by hand to protect the insulation."),
        ("how long does it keep stuff cold", "Cold drinks stay cold for about 24 hours, hot ones hot for about 12."))),
    Product("Lumen rechargeable headlamp", "headlamp", 39.0, "outdoor", (
        ("how bright is it?", "Up to 400 lumens, with a red light mode that keeps your night vision."),
        ("what does it charge with", "USB-C; a full charge takes about two and a half hours."))),
    Product("Mesa yoga mat", "yoga mat", 72.0, "fitness", (
        ("how thick is the mat", "It's 5 mm thick with a grippy natural rubber base."),
        ("is it latex free?", "No: the base is natural rubber, so skip it if you have a latex allergy."))),
    Product("Ember cast-iron skillet", "skillet", 54.0, "kitchen", (
        ("does it work on induction?", "Yes, it works on induction, gas, electric and in the oven."),
        ("is it pre-seasoned?", "It comes pre-seasoned with flaxseed oil, so you can cook with it right away."))),
    Product("Pine French press", "french press", 38.0, "kitchen", (
        ("how many cups does it make", "The 1-litre press makes about 8 small cups."),
        ("can i buy a replacement glass", "Yes, replacement beakers are on the product page under accessories."))),
    Product("Brew electric kettle", "kettle", 69.0, "kitchen", (
        ("does it have temperature settings", "Five presets from 70 to 100 °C, plus a keep-warm mode."),
        ("is the inside plastic?", "No, the inside and the lid are stainless steel."))),
    Product("Harbor ceramic mug set", "mugs", 42.0, "kitchen", (
        ("are the mugs microwave safe", "Yes, microwave and dishwasher safe."),
        ("how many mugs in a set?", "Four mugs of 350 ml each."))),
    Product("Cedar cutting board", "cutting board", 58.0, "kitchen", (
        ("how do i look after it", "Hand wash it and oil it monthly with food-safe mineral oil."),
        ("is it one piece of wood", "It's edge-grain cedar, glued with a food-safe adhesive."))),
    Product("Drift bluetooth speaker", "speaker", 79.0, "electronics", (
        ("how long does the battery last?", "About 14 hours at medium volume; it charges over USB-C."),
        ("can i pair two of them", "Yes, two Drift speakers pair for stereo in the app."))),
    Product("Echo noise-cancelling headphones", "headphones", 199.0, "electronics", (
        ("do they work with iphone and android?", "Both: Bluetooth 5.3, and the app is on iOS and Android."),
        ("can I use them wired on a plane?", "Yes, a 3.5 mm cable and a plane adapter are in the box."))),
    Product("Atlas smart watch", "watch", 229.0, "electronics", (
        ("can I swim with it?", "It's water resistant to 50 metres, so pool and open-water swims are fine."),
        ("does it track sleep?", "Yes, sleep stages and heart rate, synced to the app every morning."))),
    Product("Orbit USB-C charger", "charger", 45.0, "electronics", (
        ("can it charge a laptop", "Yes, it delivers up to 65 W, enough for most USB-C laptops."),
        ("does it come with a cable?", "A 1.5 m USB-C to USB-C cable is included."))),
    Product("Nook desk lamp", "lamp", 64.0, "home", (
        ("what bulb does it take?", "It has a built-in LED, so there's no bulb to change."),
        ("is it dimmable", "Yes, touch dimming with five brightness levels."))),
    Product("Alder wool blanket", "blanket", 98.0, "home", (
        ("is it itchy?", "It's a merino blend, so most people find it soft rather than scratchy."),
        ("can i machine wash it", "On a cold wool cycle, then dry it flat; no tumble dryer."))),
    Product("Meadow linen sheet set", "sheets", 149.0, "home", (
        ("what sizes do the sheets come in", "Twin, full, queen and king, with pockets for mattresses up to 16 in."),
        ("will they shrink?", "They're pre-washed, so shrinkage is minimal if you tumble dry low."))),
    Product("Glow string lights", "string lights", 29.0, "home", (
        ("can they go outside", "Yes, they're rated IP65, so rain is fine."),
        ("how long is the string?", "10 metres with 100 warm-white LEDs."))),
)  # fmt: skip

FAILURES: dict[str, tuple[str, ...]] = {
    "apparel": ("the zip broke", "a seam split open", "the zipper pull came off", "the lining ripped"),
    "footwear": ("the sole is coming off", "the stitching on the heel came apart", "a lace hook snapped off"),
    "outdoor": ("a buckle snapped", "a seam split", "the seal leaks now", "it stopped working properly"),
    "fitness": ("it's peeling at the edges", "the surface is flaking off", "it tore near the corner"),
    "kitchen": ("the handle came loose", "it cracked on its own", "the finish is peeling off"),
    "electronics": ("it won't charge anymore", "it keeps disconnecting", "it won't turn on", "the battery dies fast"),
    "home": ("it flickers all the time", "the stitching is unravelling", "it stopped turning on"),
}
FIRST_NAMES = (
    "Jess", "Marcus", "Priya", "Tom", "Aisha", "Daniel", "Mei", "Carlos", "Olivia", "Sam", "Fatima", "Liam",
    "Hannah", "Kofi", "Elena", "Ryan", "Sofia", "Noah", "Grace", "Mateo", "Chloe", "Omar", "Zoe", "Ben",
    "Ines", "Jamal", "Lucy", "Arjun", "Maya", "Ethan", "Nadia", "Luke", "Keiko", "Diego", "Amara", "Will",
)  # fmt: skip
LAST_NAMES = (
    "Miller", "Okafor", "Nguyen", "Patel", "Schmidt", "Garcia", "Kowalski", "Brown", "Haddad", "Lindqvist",
    "Rossi", "Kim", "Dubois", "Walsh", "Tanaka", "Moreno", "Adeyemi", "Clarke", "Novak", "Reyes",
)  # fmt: skip
AGENTS = ("Maya", "Sam", "Priya", "Jordan", "Alex", "Nina", "Theo", "Rosa", "Kai", "Leah", "Owen", "Iris")
DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com", "proton.me", "fastmail.com")
CARRIERS = ("UPS", "FedEx", "USPS", "DHL")
CITIES = ("Memphis", "Louisville", "Reno", "Columbus", "Allentown", "Denver", "Sacramento", "Atlanta", "Phoenix")
STREETS = (
    "Baker Street",
    "Maple Avenue",
    "Elm Road",
    "Harbor Lane",
    "Oak Drive",
    "Cedar Court",
    "Pine Way",
    "Willow Terrace",
    "Lakeview Boulevard",
    "Mill Road",
    "Chestnut Place",
    "Sunset Parkway",
)
COLOURS = ("black", "navy", "olive", "rust", "grey", "sand", "forest green", "burgundy")
SIZES: dict[str, tuple[str, ...]] = {
    "apparel": ("XS", "S", "M", "L", "XL"),
    "footwear": ("size 8", "size 9", "size 10", "size 11", "size 12"),
}
OTHER_SIZES = ("the small", "the large", "the standard size", "the bigger version")
NUMBER_WORDS = {1: "a", 2: "two", 3: "three", 4: "four"}


def luhn_digit(partial: str) -> str:
    total = 0
    for index, char in enumerate(reversed(partial)):
        value = int(char)
        if index % 2 == 0:  # these double once the check digit is appended
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return str((10 - total % 10) % 10)


def card_number(rng: random.Random) -> str:
    """16 digits in groups of four that pass the Luhn check, as the redactor expects of a real card."""
    partial = rng.choice(("4", "51", "52", "55"))
    partial += "".join(rng.choice("0123456789") for _ in range(15 - len(partial)))
    digits = partial + luhn_digit(partial)
    return " ".join(digits[i : i + 4] for i in range(0, 16, 4))


def iban(rng: random.Random) -> str:
    country, body = rng.choice(
        (
            ("GB", "NWBK" + "".join(rng.choice("0123456789") for _ in range(14))),
            ("DE", "".join(rng.choice("0123456789") for _ in range(18))),
            ("NL", "INGB" + "".join(rng.choice("0123456789") for _ in range(10))),
        )
    )
    numeric = "".join(str(int(ch, 36)) for ch in body + country + "00")
    compact = f"{country}{98 - int(numeric) % 97:02d}{body}"
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def add_business_days(day: dt.date, days: int) -> dt.date:
    while days > 0:
        day += dt.timedelta(days=1)
        days -= day.weekday() < 5
    return day


def business_days_between(start: dt.date, end: dt.date) -> int:
    return sum((start + dt.timedelta(days=i)).weekday() < 5 for i in range(1, (end - start).days + 1))


def say_date(day: dt.date) -> str:
    return f"{day:%B} {day.day}"


def customer_date(rng: random.Random, day: dt.date, today: dt.date) -> str:
    """How a customer refers to a past date: many ways, all true."""
    ago = (today - day).days
    options = [f"on {say_date(day)}", f"on {day.month}/{day.day}", f"on {day:%A} the {ordinal(day.day)}"]
    if ago <= 2:
        options += ["yesterday" if ago == 1 else "a couple of days ago", f"on {day:%A}"]
    elif ago <= 13:
        options += [f"{ago} days ago", "last week" if ago >= 6 else f"on {day:%A}", f"like {ago} days ago"]
    elif ago <= 45:
        options += [f"{ago // 7} weeks ago", f"about {ago // 7} weeks back", f"on the {ordinal(day.day)}"]
    else:
        options += [f"back in {day:%B}", f"{ago // 30} months ago" if ago >= 60 else "over a month ago"]
    return rng.choice(options)


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def money(amount: float) -> str:
    return f"${amount:,.2f}"


def make_slots(rng: random.Random) -> dict[str, str]:
    """Everything one conversation may mention, consistent with itself (dates in order, totals add up)."""
    product = rng.choice(PRODUCTS)
    qty = rng.choices((1, 2, 3, 4), weights=(70, 18, 8, 4))[0]
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    today = dt.date(2024, 1, 8) + dt.timedelta(days=rng.randrange(340))
    ordered = today - dt.timedelta(days=rng.randint(3, 24))
    shipped = add_business_days(ordered, rng.choice((0, 1, 1, 2)))
    eta = add_business_days(shipped, rng.randint(3, 5))
    delivered = min(today - dt.timedelta(days=1), add_business_days(shipped, rng.randint(2, 5)))
    if rng.random() < 0.5:
        oid = f"#{rng.randint(3_000_000, 9_999_999)}"
    else:
        oid = f"ORD-{ordered.year}-{rng.randint(10_000, 99_999)}"
    total = product.price * qty
    eta_late = today - dt.timedelta(days=rng.randint(2, 20))  # for late parcels: ordered, shipped, due, not here
    ordered_late = eta_late - dt.timedelta(days=rng.randint(5, 9))
    phone = rng.choice(
        ("+1 {a}-555-{b:04d}", "({a}) 555-{b:04d}", "{a}.555.{b:04d}", "+1 ({a}) 555 {b:04d}", "+44 20 7946 {b:04d}")
    ).format(a=rng.choice((415, 212, 312, 617, 503, 206, 737, 303)), b=rng.randint(100, 199))
    email_user = rng.choice(
        (f"{first}.{last}", f"{first}{rng.randint(1, 99)}", f"{first[0]}{last}", f"{first}_{last}{rng.randint(70, 99)}")
    ).lower()
    slots = {
        "store": STORE,
        "agent": rng.choice(AGENTS),
        "name": first,
        "fullname": f"{first} {last}",
        "product": product.name,
        "item": product.item,
        "kind": product.kind,
        "price": money(product.price),
        "qty_word": NUMBER_WORDS[qty],
        "total": money(total),
        "total_less_fee": money(total - float(POLICY["fee"])),
        "oid": oid,
        "odate": customer_date(rng, ordered, today),
        "order_day": say_date(ordered),
        "ship_day": say_date(shipped),
        "eta": say_date(max(eta, add_business_days(today, 1))),
        "eta_late": say_date(eta_late),
        "eta_late_c": customer_date(rng, eta_late, today),
        "ship_late": say_date(add_business_days(ordered_late, 1)),
        "odate_late": customer_date(rng, ordered_late, today),
        "delivered": say_date(delivered),
        "need_by": rng.choice(("Friday", "the weekend", "Saturday", "next Tuesday", "the 24th", "my trip")),
        "delivered_c": customer_date(rng, delivered, today),
        "today": say_date(today),
        "carrier": rng.choice(CARRIERS),
        "city": rng.choice(CITIES),
        "tracking": "1Z"
        + "".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTVWXYZ") for _ in range(8))
        + "".join(rng.choice("0123456789") for _ in range(8)),
        "email": f"{email_user}@{rng.choice(DOMAINS)}",
        "phone": phone,
        "address": f"{rng.randint(2, 2400)} {rng.choice(STREETS)}",
        "zip": f"{rng.randint(10_000, 99_899):05d}",
        "card": card_number(rng),
        "iban": iban(rng),
        "last4": f"{rng.randint(0, 9999):04d}",
        "brand": rng.choice(("Visa", "Mastercard", "Amex", "debit card")),
        "colour": rng.choice(COLOURS),
        "size": rng.choice(SIZES.get(product.kind, OTHER_SIZES)),
        "other_size": rng.choice(SIZES.get(product.kind, OTHER_SIZES)),
        "case": str(rng.randint(40_000, 89_999)),
        "failure": rng.choice(FAILURES[product.kind]),
        "exp": f"{rng.randint(1, 12):02d}/{rng.randint(25, 30)}",
        "months": str(rng.randint(2, 22)),
    }
    slots["late_business_days"] = str(business_days_between(eta_late, today))
    return {**slots, **POLICY}


# ------------------------------------------------------------------------------------------- customer voices

MISSPELLINGS = {
    "receive": "recieve", "received": "recieved", "definitely": "definately", "because": "becuase",
    "tomorrow": "tommorow", "address": "adress", "package": "pakage", "really": "realy", "until": "untill",
    "arrived": "arived", "which": "wich", "cancel": "cancle", "warranty": "warrenty", "account": "acount",
    "password": "pasword", "already": "allready", "shipping": "shiping", "broken": "borken",
    "refund": "refnud", "order": "oder", "where": "were", "their": "thier", "minutes": "mins",
    "doesn't": "doesnt", "don't": "dont", "can't": "cant", "it's": "its", "I'm": "im", "didn't": "didnt",
    "won't": "wont", "isn't": "isnt", "haven't": "havent", "what's": "whats",
}  # fmt: skip
SLANG = {
    "you": "u", "your": "ur", "please": "pls", "thanks": "thx", "because": "bc", "going to": "gonna",
    "want to": "wanna", "okay": "ok", "really": "rly", "probably": "prob",
    "to be honest": "tbh", "as soon as possible": "asap", "are": "r", "i don't know": "idk",
}  # fmt: skip
_SLOT = re.compile(r"(\{[a-z_0-9]+\})")
_SLANG = re.compile(r"\b(" + "|".join(sorted(map(re.escape, SLANG), key=len, reverse=True)) + r")\b", re.I)
_MISSPELT = re.compile(r"\b(" + "|".join(sorted(map(re.escape, MISSPELLINGS), key=len, reverse=True)) + r")\b")
_GREETING = re.compile(r"^(?:hi|hello|hey|hiya|hey there|good morning)[,.!]?\s+", re.IGNORECASE)
HAPPY_EMOJI = ("🙂", "🙏", "😅", "👍", "😊", "🤞", "❤️", "✨", "😄")
ANGRY_EMOJI = ("😡", "🤬", "😤", "🙄", "😠", "💀")
FILLERS = ("lol", "tbh", "ngl", "fr", "smh", "haha", "idk", "bruh")
VOICES = ("plain", "casual", "typos", "angry", "formal")


def outside_slots(template: str, change: Callable[[str], str]) -> str:
    """Apply ``change`` to the text between ``{slot}`` markers, so values keep their exact form."""
    return "".join(part if _SLOT.fullmatch(part) else change(part) for part in _SLOT.split(template))


def swap_letters(word: str, rng: random.Random) -> str:
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 2)
    how = rng.randrange(3)
    if how == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if how == 1:
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


@dataclass
class Voice:
    """How one customer types; applied to every customer turn of the conversation."""

    kind: str
    rng: random.Random
    emoji: float  # chance of an emoji per message
    first: bool = True

    def speak(self, template: str) -> str:
        rng = self.rng
        text = template
        if self.kind == "casual":
            text = outside_slots(text, lambda s: _SLANG.sub(lambda m: SLANG[m.group(1)], s.lower()))
            text = text.rstrip(".")
            if rng.random() < 0.3:
                text += " " + rng.choice(FILLERS)
        elif self.kind == "typos":
            text = outside_slots(text, lambda s: self._typos(s))
            if rng.random() < 0.5:
                text = outside_slots(text, str.lower)
        elif self.kind == "angry":
            text = self._angry(text)
        elif self.kind == "formal" and self.first:
            sign = rng.choice(("Kind regards,\n{fullname}", "Best,\n{name}", "Thank you,\n{fullname}"))
            if rng.random() < 0.3:
                sign = rng.choice(("--\n{fullname}\n{phone}", "-- \n{fullname}\nSent from my work laptop"))
            opening = rng.choice(("Dear {store} team,", "Hello,", "Good afternoon,", "To whom it may concern,"))
            text = f"{opening}\n\n{_GREETING.sub('', template)}\n\n{sign}"
        self.first = False
        if rng.random() < self.emoji:
            text += " " + rng.choice(ANGRY_EMOJI if self.kind == "angry" else HAPPY_EMOJI)
        return text

    def _typos(self, text: str) -> str:
        rng = self.rng
        text = _MISSPELT.sub(lambda m: MISSPELLINGS[m.group(1)] if rng.random() < 0.6 else m.group(1), text)
        words = text.split(" ")
        return " ".join(swap_letters(w, rng) if rng.random() < 0.08 else w for w in words)

    def _angry(self, text: str) -> str:
        rng = self.rng
        if rng.random() < 0.45:
            text = outside_slots(text, str.upper)
        else:  # one sentence in capitals
            parts = re.split(r"(?<=[.?!])\s+", text)
            i = rng.randrange(len(parts))
            parts[i] = outside_slots(parts[i], str.upper)
            text = " ".join(parts)
        text = re.sub(r"\?$", rng.choice(("???", "?!?!", "??")), text)
        text = re.sub(r"\.$", rng.choice(("!!!", "!!", ".")), text)
        if rng.random() < 0.3:
            text = rng.choice(("Seriously. ", "Unbelievable. ", "Not happy. ", "WTF. ", "Ugh. ")) + text
        return text


def pick_voice(rng: random.Random, intent: str) -> Voice:
    upset = intent in ("complaint", "shipping_delay", "escalation_to_human")
    weights = (25, 25, 20, 25 if upset else 5, 10)
    kind = rng.choices(VOICES, weights=weights)[0]
    return Voice(kind, rng, emoji={"casual": 0.3, "angry": 0.25}.get(kind, 0.08))


# ------------------------------------------------------------------------------------------------ the scene


@dataclass
class Scene:
    """One conversation being written: slot values, the customer's voice and the turns so far."""

    rng: random.Random
    slots: dict[str, str]
    voice: Voice
    backstory: bool = True  # whether the first message may tell a longer story
    turns: list[list[str]] = field(default_factory=list)  # [speaker, text]

    def pick(self, *options: T) -> T:
        return self.rng.choice(options)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def customer(self, *parts: str) -> None:
        template = " ".join(p for p in parts if p)
        if self.backstory and not self.turns and self.chance(0.18):  # some first messages tell a longer story
            story = self.rng.sample(BACKSTORY, self.rng.randint(1, 3))
            template = " ".join([template, *story] if self.chance(0.6) else [*story, template])
        self.turns.append(["customer", self.voice.speak(template).format_map(self.slots)])

    def agent(self, *parts: str) -> None:
        if not any(speaker == "agent" for speaker, _ in self.turns):
            parts = (self.pick(*AGENT_GREETINGS), *parts)
        self.turns.append(["agent", " ".join(p for p in parts if p).format_map(self.slots)])

    def ask_order_if_missing(self, said: str) -> None:
        """When the customer gave no order id, the agent asks and the customer answers."""
        if "{oid}" in said:
            return
        self.agent(self.pick(*ASK_ORDER))
        self.customer(self.pick(*GIVE_ORDER))


BACKSTORY = (
    "I've been ordering from you for years and never had a problem before.",
    "Sorry if this is the wrong place to ask, I couldn't find a contact form.",
    "I already read the FAQ and it didn't answer this.", "It's for my mum's birthday so I'm a bit stressed.",
    "My partner says I should just wait but I'd rather ask.", "I'm away next week so timing matters.",
    "I've got the confirmation email right here.", "This is my first order with you.",
    "I tried calling but there's no phone number anywhere on the site.", "Long day, sorry for the rant.",
    "Just want to sort this out quickly.", "A friend recommended your shop.",
)  # fmt: skip
CUSTOMER_GREETINGS = ("", "", "", "hi", "Hi,", "hello", "Hey", "hey there", "Good morning.", "hiya", "Hello!")
AGENT_GREETINGS = (
    "Hi {name}, thanks for reaching out!", "Hello {name}, {agent} here from {store}.", "Hi there, thanks for "
    "contacting {store}.", "Hey {name}, {agent} here, happy to help.", "Thanks for getting in touch, {name}.",
    "Hi! This is {agent}.", "Hello, and thanks for your patience.", "Hi {name}.", "", "",
)  # fmt: skip
ASK_ORDER = (
    "Could you send me your order number? It starts with ORD or # and it's in your confirmation email.",
    "Can you share the order number so I can pull it up?",
    "What's the order number? You'll find it in the confirmation email.",
    "Sure. Which order is this about? The order number is the quickest way for me to find it.",
    "I can check that. Could you give me the order number, please?",
    "Happy to look into it. What's your order number?",
)
GIVE_ORDER = (
    "it's {oid}", "{oid}", "order {oid}", "sure, {oid}", "here: {oid}", "{oid} i think", "ok its {oid}",
    "{oid}, placed {odate}", "The order is {oid}. I ordered it {odate}.", "one sec... {oid}",
    "it should be {oid}, the email went to {email}", "{oid} (under {email})",
)  # fmt: skip
THANKS = (
    "thanks!", "thank you so much", "ok thx", "great, appreciate it", "perfect", "cool cool", "awesome, thanks {agent}",
    "ok. thanks I guess", "that's all, cheers", "ty!!", "much appreciated", "alright, thank you for the help",
    "brilliant, thanks a lot", "ok got it", "nice one, thanks", "Thanks {agent}, that helps.",
)  # fmt: skip
WELCOME = ("You're welcome, {name}!", "My pleasure.", "Anytime!", "Glad I could help.", "You're very welcome.", "")
CLOSINGS = (
    "Is there anything else I can help with?", "Anything else I can do for you today?", "Have a great day!",
    "Let me know if anything else comes up.", "Thanks for shopping with {store}.", "Take care!",
    "Enjoy the rest of your week.", "Have a lovely evening.",
)  # fmt: skip


def joined(parts: Sequence[str]) -> str:
    """The non-empty parts, joined by spaces."""
    return " ".join(p for p in parts if p)


def close_politely(s: Scene) -> None:
    s.agent(s.pick(*WELCOME), s.pick(*CLOSINGS))


# ------------------------------------------------------------------------------------------- side questions

SIDE_QA: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("how long do i have to return stuff?", "what's your return policy btw?",
      "can I return things if I change my mind?"),
     ("You can return unused items within {rw} days of delivery.",
      "Our return window is {rw} days from delivery, for anything unused and in its original packaging.")),
    (("how long do refunds take?", "when would I get my money back if I returned it?"),
     ("Refunds go out within {refund_days} business days of the return reaching our warehouse; banks can take "
      "{bank_days} business days to show them.",
      "Once a return reaches us we refund within {refund_days} business days, to the original payment method.")),
    (("do you do free shipping?", "how much is shipping?", "is shipping free?"),
     ("Standard shipping is free on orders over ${free_over} and ${std_fee} otherwise; it takes {std_days} "
      "business days.",
      "Orders over ${free_over} ship free; below that standard shipping is ${std_fee}, {std_days} business days.")),
    (("is there faster shipping?", "can i get it quicker, like express?", "do you have next day delivery?"),
     ("Express is ${exp_fee} and arrives in {exp_days} business days; orders placed before {cutoff} ship the same "
      "business day.", "Yes: express costs ${exp_fee} and takes {exp_days} business days.")),
    (("can I still cancel later if I change my mind?", "what if i want to cancel after ordering"),
     ("You can cancel free of charge any time before the order is dispatched; after that you can return it within "
      "{rw} days of delivery.", "Until it's dispatched, cancelling is free; once it ships, a return is the way.")),
    (("is there a warranty?", "what warranty do you offer?", "how long is the guarantee?"),
     ("Everything we sell has a {wy}-year warranty from delivery against manufacturing defects.",
      "You're covered by our {wy}-year warranty against manufacturing defects, counted from delivery.")),
    (("do you take paypal?", "can I pay with apple pay?", "what payment methods do you accept?"),
     ("We accept Visa, Mastercard, American Express, PayPal and Apple Pay.",
      "Visa, Mastercard, American Express, PayPal and Apple Pay all work at checkout.")),
    (("if it goes on sale next week do I get the difference?", "do you price match?"),
     ("If our price drops within {adjust_days} days of your purchase, we refund the difference once; just message us.",
      "We don't match other shops, but if our own price drops within {adjust_days} days of purchase we refund the "
      "difference once.")),
    (("can I return a gift card?", "are gift cards refundable?"),
     ("Gift cards and personalised items are final sale, so they can't be returned.",)),
    (("do you do gift wrapping?", "can you gift wrap it?"),
     ("Yes, gift wrap is ${wrap_fee} per item; choose it at checkout and the packing slip won't show prices.",)),
    (("do you have a store I can go to?", "can i pick it up somewhere?"),
     ("We're online-only, so there's no pickup, but returns can go to any drop-off point of the carrier on the "
      "label.",)),
)  # fmt: skip
SIDE_LEADS = ("Also,", "also", "oh and", "btw", "One more thing:", "and", "Another question:", "P.S.")


def side_question(s: Scene) -> tuple[str, str]:
    questions, answers = s.pick(*SIDE_QA)
    return f"{s.pick(*SIDE_LEADS)} {s.pick(*questions)}", s.pick(*answers)


# ----------------------------------------------------------------------------------------------- the flows
# Each flow writes the turns of one intent and returns whether the issue ended resolved.


def returns(s: Scene) -> bool:
    late = s.chance(0.15)
    faulty = s.chance(0.3)
    if late:
        s.slots["delivered_c"] = s.pick("about 6 weeks ago", "back in the spring", "like two months ago")
        s.slots["delivered"] = "more than " + s.pick("five", "six", "seven") + " weeks ago"
    reason = s.pick(
        *("it arrived damaged", "one part was missing from the box", "you sent the wrong colour", "it's defective")
        if faulty
        else (
            "it's too small",
            "the colour looks nothing like the photos",
            "I ordered the wrong size",
            "I changed my mind",
            "my partner already bought the same one",
            "it's heavier than I expected",
            "it was a gift and they have one already",
            "the quality isn't great for {price}",
        )
    )
    context = s.pick(
        "I got the {product} {delivered_c}",
        "the {item} I ordered {odate} arrived {delivered_c}",
        "I bought {qty_word} {product} and it came {delivered_c}",
        "order {oid} was delivered {delivered_c}",
        "received my {item} {delivered_c}",
    )
    ask = s.pick(
        "How do I return it?",
        "Can I send it back?",
        "what's the return process?",
        "Is it too late to return it?",
        "how do returns work with you guys?",
        "Do I need to print a label or what?",
        "I want my money back.",
        "Can I exchange it for {other_size}?",
    )
    parts = [f"{context} but {reason}.", ask] if s.chance(0.6) else [ask, f"{context}, {reason}."]
    said = joined([s.pick(*CUSTOMER_GREETINGS), *parts])
    s.customer(said)
    s.ask_order_if_missing(said)
    if late:
        s.agent(
            s.pick("I'm sorry, {name}: ", "Thanks for checking. Unfortunately ")
            + s.pick(
                "our return window is {rw} days from delivery and your order arrived {delivered}, so I can't accept "
                "a return for it.",
                "returns are accepted within {rw} days of delivery, and it was delivered {delivered}.",
            ),
            "If it has a fault, though, it's covered by our {wy}-year warranty and I can start a claim."
            if faulty
            else "",
        )
        if s.chance(0.5):
            s.customer(
                s.pick(
                    "that's really annoying. nobody told me that",
                    "seriously? it was a few days over",
                    "ok fine, never mind",
                    "what a joke",
                )
            )
            s.agent(
                s.pick(
                    "I understand it's frustrating, and I'm sorry I can't do more on this one.",
                    "I'm sorry. The window is the same for every order, so I can't make an exception.",
                )
            )
            return False
        return faulty
    s.agent(
        s.pick(
            "Good news: it's within our {rw}-day return window.",
            "No problem, you're well within the {rw} days of delivery we allow for returns.",
            "Sure! Returns are accepted within {rw} days of delivery.",
        ),
        s.pick(
            "I've emailed a prepaid {carrier} label to the address on your account.",
            "You can start it under Orders > Return items, and we'll email you a prepaid {carrier} label.",
            "I've set up the return; the label is in your inbox, so just drop the parcel at any {carrier} point.",
        ),
        "Since it's our mistake, the label is free."
        if faulty
        else s.pick(
            "The ${fee} label fee comes off your refund.",
            "There's a ${fee} return label fee, deducted from the refund.",
            "Exchanges for another size or colour are free; for a refund the ${fee} label fee applies.",
        ),
        s.pick("Please keep it unused and in its original packaging.", "Please pack it unused, with the tags on.", ""),
    )
    follow = s.pick("timing", "box", "store", "exchange", "pickup", "none")
    if follow == "pickup":
        s.customer(s.pick("can the courier collect it from {address}?", "I'm at {address} all week, can you collect?"))
        s.agent("We don't arrange pickups, sorry, but {carrier} drop-off points are usually close by; the label "
                "email lists the nearest ones.")  # fmt: skip
    elif follow == "timing":
        s.customer(
            s.pick("how long till i get my money?", "And the refund, how long does it take?", "when do I get refunded?")
        )
        s.agent(
            "Once it reaches our warehouse, we issue the refund within {refund_days} business days to your original "
            "payment method" + s.pick(".", "; your bank may take {bank_days} business days to show it.")
        )
    elif follow == "box":
        s.customer(s.pick("do I need the original box? I threw it out 😅", "what if I don't have the packaging"))
        s.agent(
            s.pick(
                "Any sturdy box works; we only ask that the item itself is unused.",
                "No worries, any box that protects it is fine.",
            )
        )
    elif follow == "store":
        s.customer(s.pick("can i just drop it at one of your stores?", "is there a shop I can bring it to?"))
        s.agent("We're online-only, so there are no stores, but any {carrier} drop-off point takes it.")
    elif follow == "exchange":
        s.customer(s.pick("Could I swap it for {other_size} instead?", "actually can i get the {colour} one instead"))
        s.agent(
            s.pick(
                "Of course: exchanges for another size or colour have no label fee. I've reserved the new "
                "one and it ships as soon as the carrier scans your return.",
                "Sure, I've switched the return to an exchange, so no label fee. The replacement ships once "
                "your parcel is scanned.",
            )
        )
    return True


STATUS_OPENERS = (
    "where is my order? i ordered the {product} {odate} and havent heard anything.",
    "Can you tell me when order {oid} will arrive?", "has my order shipped yet? it's {oid}",
    "I placed an order {odate} for {qty_word} {product}. Any update?",
    "Just checking on the status of my order, the tracking link doesn't load.", "when will my {item} get here?",
    "I need the {item} by {need_by}. Is it on its way?", "Quick question: what's the status of {oid}?",
    "my order still says processing, is that normal?", "can you check where my stuff is? ordered {odate}",
    "It's a gift for {need_by}, will the {product} make it in time?",
)  # fmt: skip


def order_status(s: Scene) -> bool:
    said = joined((s.pick(*CUSTOMER_GREETINGS), s.pick(*STATUS_OPENERS)))
    if s.chance(0.15):
        said += " " + s.pick("You can also text me on {phone}.", "my number is {phone} if easier")
    s.customer(said)
    s.ask_order_if_missing(said)
    status = s.pick("processing", "shipped", "shipped", "out", "delivered", "address")
    if status == "processing":
        s.agent(
            "Your order {oid} is being packed right now.",
            s.pick(
                "Orders placed before {cutoff} leave our warehouse the same business day,", "It'll ship by tonight,"
            ),
            "and standard shipping then takes {std_days} business days. You'll get a tracking email as soon as it "
            "leaves.",
        )
    elif status == "shipped":
        s.agent(
            s.pick(
                "It shipped on {ship_day} with {carrier}, tracking number {tracking}.",
                "It's on its way! {carrier} picked it up on {ship_day}; the tracking number is {tracking}.",
            ),
            s.pick(
                "The last scan was at the {city} hub and the estimated delivery is {eta}.",
                "{carrier} currently estimates delivery on {eta}.",
            ),
        )
    elif status == "out":
        s.agent("Good news: it's out for delivery today with {carrier}, so it should be with you by this evening.")
    elif status == "delivered":
        s.agent("{carrier} marked it as delivered on {delivered}" + s.pick(".", ", left at the front door."))
        s.customer(
            s.pick(
                "but it's NOT here",
                "that's weird, I never got it",
                "nope, nothing at my door!!",
                "i checked everywhere, no package",
            )
        )
        s.agent(
            s.pick("I'm sorry about that.", "That's worrying, sorry."),
            "Parcels are sometimes scanned early or left with a neighbour or in a safe place. If it hasn't turned "
            "up within {missing_days} days, reply here and I'll open a claim with {carrier} and send a replacement "
            "or a refund.",
        )
        return s.chance(0.6)
    else:
        s.agent("It's packed and waiting for pickup. Is there anything you'd like to change?")
        s.customer(
            s.pick(
                "yes! I moved, can it go to {address} instead?",
                "Can you change the address to {address}, zip {zip}?",
                "please ship to {address} not my old place",
            )
        )
        s.agent(
            s.pick("Done: the delivery address is now {address}.", "Updated! It'll go to {address}."),
            "Standard shipping takes {std_days} business days once it leaves us.",
        )
    if s.chance(0.35):
        s.customer(s.pick("can I upgrade to express?", "is there any way to speed it up?"))
        s.agent(
            "If it hasn't been picked up yet I can upgrade it to express for ${exp_fee}, which takes {exp_days} "
            "business days." + s.pick("", " Want me to do that?")
        )
    return True


def refund(s: Scene) -> bool:
    opener = s.pick(
        ("late", "I returned the {item} {delivered_c} and still no refund. where's my money?"),
        ("when", "When will I get my refund for {oid}?"),
        ("late", "your warehouse got my return but the refund isn't on my card yet"),
        ("when", "how long do refunds usually take? I sent back {qty_word} {product}."),
        ("hold", "I was charged {total} for an order I cancelled! I want that back."),
        ("method", "can you refund me to my bank account instead? my card expired"),
        ("late", "still waiting on my refund for the {item}, it's been over a week"),
    )
    said = joined((s.pick(*CUSTOMER_GREETINGS), opener[1]))
    iban_given = opener[0] != "method" and s.chance(0.08)
    if iban_given:
        said += " " + s.pick("You can also just send it to my IBAN {iban}.", "my iban is {iban} if that's quicker")
    s.customer(said)
    s.ask_order_if_missing(said)
    note = "Please don't share bank details in chat; refunds only go back to the original payment method."
    note = note if iban_given else ""
    case = {"late": s.pick("issued", "received"), "when": s.pick("issued", "transit")}.get(opener[0], opener[0])
    if case == "issued":
        s.agent(
            note,
            "I can see the refund of "
            + s.pick("{total}", "{total_less_fee} ({total} minus the ${fee} label fee)")
            + " went back to your {brand} ending in {last4} on {today}.",
            s.pick(
                "We issue refunds within {refund_days} business days of a return reaching us, and banks usually "
                "take {bank_days} business days to post them.",
                "Banks can take {bank_days} business days to show it, so it may not be on your statement yet.",
            ),
        )
    elif case == "received":
        s.agent(
            note,
            "Your return reached our warehouse on {delivered} and it's being checked now.",
            "The refund will be issued within {refund_days} business days of that date; I've flagged it as a priority.",
        )
    elif case == "transit":
        s.agent(
            note,
            s.pick(
                "The tracking shows the parcel is still on its way to us.",
                "We haven't received it yet; {carrier} shows it in transit.",
            ),
            "Once it arrives, we refund within {refund_days} business days, to the original payment method.",
        )
    elif case == "method":
        bank_details = s.chance(0.6)
        if bank_details:  # a second message before the agent answered
            s.customer(s.pick("here's my IBAN {iban}, just send it there", "IBAN: {iban} (it's my savings account)"))
        s.agent(
            "Please don't post bank details in chat, we never need them." if bank_details else "",
            "Refunds can only go back to the original payment method. If that card has expired, your bank still "
            "passes the money to your new card on the same account.",
            s.pick("If you'd rather, I can issue store credit instead, which is instant.", ""),
        )
        if len(s.turns) <= 5 and s.chance(0.5):
            s.customer(s.pick("store credit is fine", "ugh ok, I'll wait for the bank"))
            s.agent(s.pick("Done! The store credit is on your account now.", "Understood, it'll reach your account."))
    else:
        s.agent(
            note,
            "That charge is an authorisation hold, not a payment: we only take payment when an order ships.",
            "Your bank releases the hold within {hold_days} days.",
        )
    if len(s.turns) <= 6 and s.chance(0.3):
        s.customer(s.pick("ok so by when exactly?", "and if it's not there by then?"))
        s.agent(
            "If it isn't on your statement after {bank_days} business days, message us and we'll send the bank "
            "reference so your bank can trace it."
        )
    return True


def shipping_delay(s: Scene) -> bool:
    express = s.chance(0.25)
    openers = [
        "my package was supposed to arrive {eta_late_c} and it's still not here.",
        "Tracking hasn't updated in days. Is my parcel lost?",
        "order {oid} is late, I needed it for {need_by}.",
        "why is my order stuck in {city}?",
        "It's said 'in transit' for a week now...",
        "the {product} hasn't arrived and the delivery date was {eta_late}.",
        "Where is my {item}? {carrier} says delayed with no new date.",
    ]
    if express:
        openers = [
            "I PAID FOR EXPRESS and it still hasn't come.",
            "express shipping my foot, ordered {odate_late} and nothing.",
        ]
    said = joined((s.pick(*CUSTOMER_GREETINGS), s.pick(*openers)))
    s.customer(said)
    s.ask_order_if_missing(said)
    apology = s.pick(
        "I'm so sorry about the wait.", "Sorry, that's not the experience we want.", "I understand, let me check."
    )
    where = "It left us on {ship_late} with {carrier}, estimated for {eta_late}, and the last scan was in {city}."
    refund_express = (
        ("Since express didn't arrive within {exp_days} business days, I've also refunded the ${exp_fee} express fee.")
        if express
        else ""
    )
    late = int(s.slots["late_business_days"])
    if late > int(POLICY["lost_days"]):
        s.agent(
            apology,
            where,
            "It's now more than {lost_days} business days past the estimated date, so we treat it "
            "as lost. I can ship a replacement by express at no cost or refund you in full. Which would you prefer?",
        )
        replace = s.chance(0.5)
        s.customer(
            s.pick("replacement please", "send a new one, express", "just send another one")
            if replace
            else s.pick("refund. i'm done waiting", "I'd rather have a refund", "money back please")
        )
        s.agent(
            "Done: a replacement ships today by express."
            if replace
            else "Done: I've refunded {total} to your original payment method.",
            refund_express,
        )
        return True
    elif s.chance(0.3):
        s.agent(
            apology,
            where,
            "Carriers sometimes skip scans, so this can still be normal. If there's no movement "
            "for {trace_days} business days, we open a trace with {carrier}; I'll keep an eye on it.",
            refund_express,
        )
    else:
        s.agent(
            apology,
            where,
            s.pick(
                "As it hasn't moved for {trace_days} business days, I've opened a trace with {carrier} (case {case}).",
                "It hasn't been scanned for {trace_days} business days, so I've asked "
                "{carrier} to trace it; the case number is {case}.",
            ),
            "If it isn't delivered {lost_days} business "
            "days after the estimated date, we'll send a replacement or a full refund, whichever you prefer.",
            refund_express,
        )
    if s.chance(0.25):
        s.customer(
            s.pick(
                "this is not good enough. I needed it this week",
                "so I just wait?? great",
                "that doesn't help me at all",
            )
        )
        s.agent(
            "I understand, and I'm sorry. I can't make the carrier go faster, but I'll update you by email as "
            "soon as {carrier} replies."
        )
        return False
    return True


CANCEL_OPENERS = (
    ("all", "I need to cancel my order {oid} asap."), ("all", "ordered the wrong size, can I cancel?"),
    ("item", "can i cancel just one item from my order? the {item}"),
    ("all", "Please cancel order {oid}, found it cheaper elsewhere."),
    ("twice", "accidentally ordered twice, can you cancel one of them?"),
    ("all", "how do I cancel? the website won't let me."), ("all", "changed my mind about the {product}. cancel pls"),
    ("all", "Can I still cancel {oid}? I ordered it {odate}."),
    ("item", "I'd like to take the {product} off my order but keep the rest."),
    ("twice", "the site glitched and I got two confirmation emails, I only want one {item}!"),
    ("all", "I placed an order {odate} by mistake (my kid did it 🙈). Can it be cancelled?"),
    ("all", "cancel {oid}. the delivery date is too late for me"),
)  # fmt: skip
CANCELLED = (
    "Done: I've cancelled {oid}.", "It hadn't shipped yet, so I've cancelled it.",
    "Good timing, it was still being picked, so the order is cancelled.", "All set, {oid} is cancelled.",
)  # fmt: skip
NOT_CHARGED = (
    "You won't be charged for it: we only take payment when an order ships, and the pending amount is an "
    "authorisation hold your bank releases within {hold_days} days.",
    "Nothing was taken from your account. If you see a pending amount, it's a hold that your bank releases within "
    "{hold_days} days.",
    "As we only charge when an order ships, there's no refund to wait for; any pending hold drops off within "
    "{hold_days} days.",
)
TOO_LATE = (
    "I'm sorry, it was dispatched on {ship_day} with {carrier}, so I can't cancel it anymore.",
    "Unfortunately it already left our warehouse, and shipped orders can't be cancelled.",
    "I checked and it's already with {carrier}, so cancelling isn't possible now, sorry.",
)
AFTER_SHIPPING = (
    "Once it arrives you can return it within {rw} days of delivery.",
    "You can refuse the delivery and we'll refund you in full when it comes back, or return it within {rw} days of "
    "delivery.",
    "When it arrives, just start a return: you have {rw} days from delivery.",
)


def cancellation(s: Scene) -> bool:
    kind, opener = s.pick(*CANCEL_OPENERS)
    said = joined((s.pick(*CUSTOMER_GREETINGS), opener))
    s.customer(said)
    s.ask_order_if_missing(said)
    if s.chance(0.65):
        done = {
            "item": "I've removed the {item} from the order; the rest ships as planned.",
            "twice": s.pick("I've cancelled the second order and kept {oid}.", "The duplicate is cancelled."),
            "all": s.pick(*CANCELLED),
        }[kind]
        s.agent(done, s.pick(*NOT_CHARGED))
        if s.chance(0.3):
            s.customer(s.pick("will I get an email?", "do I need to do anything else?", "so no refund needed?"))
            s.agent(s.pick("You'll get a cancellation email in a few minutes; nothing else to do.", "Nope, all done!"))
        return True
    s.agent(s.pick(*TOO_LATE), s.pick(*AFTER_SHIPPING))
    if s.chance(0.5):
        upset = s.chance(0.4)
        s.customer(
            s.pick("so I have to pay for the return label?? ridiculous", "that's so annoying", "great. just great.")
            if upset
            else s.pick("ok I'll refuse the delivery then", "fine, I'll send it back", "how much is the return?")
        )
        s.agent(
            s.pick("A refused delivery costs you nothing.", "Refusing it at the door is free."),
            "A return after delivery has the ${fee} label fee, as it's a change of mind.",
        )
        return not upset
    return True


PAYMENT_OPENERS = (
    ("declined", "my card keeps getting declined at checkout but it works everywhere else."),
    ("attempts", "Payment failed 3 times and now it won't let me try again?"),
    ("declined", "it says 'payment could not be processed'. I tried my {brand} and paypal."),
    ("charged", "I got charged {total} but the order didn't go through!"),
    ("declined", "why does checkout keep kicking me back to the cart?"),
    ("methods", "does your site take amex? mine got rejected"),
    ("declined", "trying to buy the {product} and the payment just spins"),
    ("charged", "there's a pending {total} on my {brand} but no order confirmation??"),
    ("attempts", "it says 'too many attempts, try later'. how much later?"),
    ("methods", "can I pay by bank transfer? my card isn't working on your site"),
    ("declined", "Error at checkout: 'card verification failed'. The billing address is right, I checked twice."),
)  # fmt: skip
PAYMENT_TIPS: dict[str, str] = {
    "address": "The usual cause is a billing address that doesn't match the one your bank has on file, even a "
    "missing apartment number.",
    "expiry": "Please check the card hasn't expired and approve the security check in your banking app if it pops up.",
    "attempts": "After {attempts} failed attempts, checkout pauses for {pause_min} minutes to protect your account, so "
    "please wait that long before trying again.",
    "methods": "We accept Visa, Mastercard, American Express, PayPal and Apple Pay; bank transfers aren't possible.",
    "browser": "An ad blocker or an old saved page can also break the payment step; a private window often helps.",
}
CHARGED = (
    "A failed payment is never taken: what you see is an authorisation hold, and your bank releases it within "
    "{hold_days} days.",
    "That pending amount is only an authorisation hold, not a charge; your bank drops it within {hold_days} days.",
)


def payment_failure(s: Scene) -> bool:
    kind, opener = s.pick(*PAYMENT_OPENERS)
    s.customer(s.pick(*CUSTOMER_GREETINGS), opener)
    others = [tip for name, tip in PAYMENT_TIPS.items() if name != kind]
    s.rng.shuffle(others)
    first = {"attempts": PAYMENT_TIPS["attempts"], "methods": PAYMENT_TIPS["methods"]}.get(kind, "")
    s.agent(
        s.pick(*CHARGED) if kind == "charged" else s.pick("Sorry about the trouble!", "Let's get this sorted.", ""),
        first,
        *others[: s.rng.randint(1, 2)],
    )
    if s.chance(0.12):
        s.customer(
            s.pick(
                "can you just put it through manually? card is {card}",
                "here's my card number {card} exp {exp}, try it on your side",
                "ugh. {card}, can you take it over chat?",
            )
        )
        s.agent(
            s.pick("Please don't share card details in chat:", "Please delete that message if you can:"),
            "we never ask for your full card number or security code, and I can't take payments here. Checkout is "
            "the only safe place for them.",
        )
    outcome = s.pick("worked", "worked", "bank", "nothing")
    if outcome == "worked":
        s.customer(
            s.pick(
                "ok paypal worked!", "fixed it, the zip code was wrong lol", "went through this time, thx",
                "apple pay did it", "it worked after waiting, thanks",
            )
        )  # fmt: skip
        s.agent(s.pick("Great, your order is confirmed!", "Brilliant, glad it went through.", "Perfect, it's in!"))
        return True
    if outcome == "bank":
        s.customer(s.pick("still declined...", "nope, same error", "tried again, failed again", "same thing 😩"))
        s.agent(
            "In that case it's worth calling your bank: they can see why the payment was declined, which we can't.",
            s.pick("PayPal or Apple Pay are good alternatives meanwhile.", "Your basket is saved in the meantime."),
        )
        return False
    return True


ACCOUNT_OPENERS = (
    ("reset", "I can't log into my account."), ("reset", "forgot my password and the reset email never arrives"),
    ("locked", "it says my account is locked?"),
    ("no_email", "I changed my email address and now I can't get in. old one was {email}"),
    ("expired", "the reset link says expired"), ("reset", "can you reset my password? my email is {email}"),
    ("locked", "login keeps saying wrong password but I know it's right"),
    ("hacked", "i think someone else got into my account"),
    ("hacked", "I got an email about an order I never made and now my password doesn't work"),
    ("no_email", "my old work email is gone and that's what my account uses. how do I get back in?"),
    ("reset", "Password reset isn't working for me, can you help? I've got an order {oid} I want to check."),
    ("expired", "clicked the reset link this morning and it says invalid"),
    ("locked", "locked out after trying a few passwords, help"),
)  # fmt: skip
ACCOUNT_FOLLOW_UPS = (
    ("will I lose my order history?", "No, your orders, addresses and wishlist all stay with the account."),
    ("can't you just tell me my password?", "I can't see passwords, nobody here can; a reset is the only way in."),
    ("do I need to make a new account?", "Please don't: your existing account keeps your orders and store credit."),
    ("can I change my email while we're at it?", "Yes, once you're in, go to Account > Login details."),
    ("is my card info safe?", "Yes. We never store full card numbers, only the last four digits."),
)


def account_access(s: Scene) -> bool:
    case, opener = s.pick(*ACCOUNT_OPENERS)
    said = joined((s.pick(*CUSTOMER_GREETINGS), opener))
    if s.chance(0.12):
        said += " " + s.pick("call me at {phone}", "My phone is {phone}.", "you can also text me at {phone}")
    s.customer(said)
    no_calls = "We don't make outbound calls, but I can sort this out right here in chat." if "{phone}" in said else ""
    sorry = s.pick("", "Sorry for the hassle!", "Let's get you back in.", "No problem.", "That's frustrating, sorry.")
    if case == "locked":
        s.agent(
            no_calls,
            sorry,
            s.pick(
                "After {login_attempts} failed sign-in attempts an account locks for {lock_min} minutes, for security.",
                "For your security, {login_attempts} wrong passwords in a row lock the account for {lock_min} minutes.",
            ),
            s.pick(
                "It unlocks by itself; then sign in or use 'Forgot password'.",
                "Once it unlocks, I'd use 'Forgot password' rather than guessing again.",
            ),
        )
    elif case == "expired":
        s.agent(
            no_calls,
            sorry,
            s.pick(
                "Reset links are valid for {reset_min} minutes, and only the newest one works.",
                "The link expires {reset_min} minutes after it's sent.",
            ),
            s.pick("I've just sent you a new one.", "A fresh link is in your inbox now."),
        )
    elif case == "reset":
        s.agent(
            no_calls,
            sorry,
            s.pick(
                "I've sent a fresh reset link to the email on your account.",
                "A new password reset email is on its way to the address on your account.",
            ),
            s.pick(
                "It's valid for {reset_min} minutes, so use it soon",
                "The link works for {reset_min} minutes",
            )
            + s.pick(", and check spam or promotions if it isn't in your inbox.", ".", "; check your spam folder too."),
        )
    else:
        s.agent(
            no_calls,
            s.pick("I'm sorry to hear that.", "Let's secure it.", "Don't worry, we can fix this."),
            s.pick(
                "I'll verify you without that inbox: please send the number of your most recent order and the zip "
                "code it shipped to.",
                "To confirm it's you, what's your latest order number and the zip code it went to?",
            ),
            s.pick("I'll never ask for your password.", "Please don't send your password, I never need it."),
        )
        s.customer(
            s.pick(
                "{oid} and {zip}", "order {oid}, zip is {zip}", "ok: {oid} / {zip}. new email {email}",
                "{oid}, it went to {address}, {zip}",
            )
        )  # fmt: skip
        s.agent(
            "Thanks, that matches. I've moved your login to your new email and sent a reset link there"
            + (", and signed out every device." if case == "hacked" else ".")
        )
    if s.chance(0.25):
        question, answer = s.pick(*ACCOUNT_FOLLOW_UPS)
        s.customer(question)
        s.agent(answer)
    if len(s.turns) <= 6 and s.chance(0.4):
        stuck = s.chance(0.3)
        s.customer(
            s.pick("still nothing in my inbox...", "didn't get anything", "nope, nothing came")
            if stuck
            else s.pick("got it, I'm in!", "worked, thank you", "ok that did it", "in! thx")
        )
        if stuck:
            s.agent("Please check spam and add our support address to your contacts; I've sent it once more.")
            return False
    return True


def product_question(s: Scene) -> bool:
    product = next(p for p in PRODUCTS if p.name == s.slots["product"])
    facts = list(product.facts)
    s.rng.shuffle(facts)
    first = s.pick(
        "Quick question about the {product}: " + facts[0][0],
        facts[0][0] + " (the {product})",
        "Looking at the {product} for my "
        + s.pick("sister", "dad", "husband", "wife", "friend", "son")
        + ". "
        + facts[0][0],
        "re the {product}: " + facts[0][0],
    )
    both = s.chance(0.4)
    side = side_question(s) if s.chance(0.3) else None
    s.customer(s.pick(*CUSTOMER_GREETINGS), first, facts[1][0] if both else "", side[0] if side else "")
    s.agent(facts[0][1], facts[1][1] if both else "", side[1] if side else "")
    follow = s.pick("stock", "shipping", "order", "size" if product.kind in ("apparel", "footwear") else "order")
    if follow == "stock":
        s.customer(s.pick("is the {colour} one back in stock soon?", "it says sold out in {colour}, when is it back?"))
        s.agent(
            "We don't have a confirmed restock date yet. If you tap 'Notify me' on the product page, you'll "
            "get an email the moment it's back."
        )
    elif follow == "shipping":
        s.customer(s.pick("how much to ship {qty_word} of them?", "and shipping cost?"))
        s.agent(
            "That's {price} each; standard shipping is free on orders over ${free_over} and ${std_fee} "
            "otherwise, and takes {std_days} business days."
        )
    elif follow == "size":
        s.customer(s.pick("I'm usually a {size}, which size should I get?", "between {size} and {other_size}?"))
        s.agent("Go with your usual size; if you're between two, size up. Exchanges for another size are free.")
    elif s.chance(0.6):
        s.customer(s.pick("great, ordering now!", "perfect, added to cart", "ok thanks, I'll think about it"))
        s.agent(s.pick("Enjoy it!", "Sounds good, happy to help if anything else comes up."))
    return True


COMPLAINT_OPENERS: dict[str, tuple[str, ...]] = {
    "damaged": (
        "The {product} arrived broken and the box was crushed.", "my {item} showed up damaged. again.",
        "The {item} came with a huge scratch. For {price} I expect better.",
        "opened the parcel and the {item} is cracked. great start to my {weekday}",
        "Your courier clearly threw my {product} around, it's dented.",
    ),
    "wrong": (
        "I ordered the {colour} {item} in {size} and got a different one.", "You sent me the WRONG item.",
        "this isn't what I ordered, I got someone else's {item}?",
        "ordered {qty_word} {product} and got a {colour} one. not what I picked",
    ),
    "missing": (
        "Order {oid} came but the {item} was missing from the box.", "only half my order arrived",
        "Paid for {qty_word} {product} and the box was empty apart from the packing slip.",
        "the packing slip lists the {item} but it's not in the parcel",
    ),
    "service": (
        "the agent I chatted with yesterday just closed the chat on me.",
        "Nobody answers my emails. This is the worst customer service I've had.",
        "I've been waiting 3 days for a reply.", "your last agent promised a call back that never happened",
    ),
    "quality": (
        "The {item} fell apart after two weeks. For {price} that's unacceptable.",
        "really disappointed with the {product}, it feels cheap", "the {item} already looks worn out",
        "the finish on my {item} is coming off already and it's barely {months} months old",
    ),
    "packaging": (
        "why do you send one {item} in a box the size of a microwave?", "So much plastic in my parcel. Do better.",
        "three separate boxes for one order {odate}? what a waste",
    ),
}  # fmt: skip
SORRY = (
    "I'm really sorry about this.", "I'm sorry, that's not okay.", "Thank you for telling us, and I apologise.",
    "That's not good enough from us, I'm sorry.", "Oh no, I'm so sorry.", "I completely understand.",
)  # fmt: skip
MAKE_GOOD = (
    "I've sent a free replacement; it ships today by express at no cost.",
    "I can send a replacement right away or refund the {item} in full, your choice.",
    "A replacement is on its way by express, and you don't need to wait for anything to come back first.",
    "I've refunded {price} for the {item} to your original payment method, or I can reship it if you prefer.",
)
FREE_RETURN = (
    "If we need the item back, the return label is free.", "There's nothing to pay for the return either.",
    "You don't need to send anything back unless we email you a free label.",
)  # fmt: skip


def complaint(s: Scene) -> bool:
    kind = s.pick(*COMPLAINT_OPENERS)
    s.slots["weekday"] = s.pick("Monday", "weekend", "day", "birthday")
    s.customer(s.pick(*CUSTOMER_GREETINGS), s.pick(*COMPLAINT_OPENERS[kind]))
    sorry = s.pick(*SORRY)
    if kind in ("damaged", "wrong", "missing"):
        if kind in ("damaged", "wrong") and s.chance(0.5):
            s.agent(sorry, s.pick("Could you send a photo of it, so I can report it?", "Can you send me a photo?"))
            s.customer(s.pick("[photo attached]", "sent it to your email", "here you go", "ok uploaded 2 pics"))
            sorry = s.pick("Thanks for the photo.", "Thank you, that's clear.", "Got it, thanks.")
        s.agent(sorry, s.pick(*MAKE_GOOD), s.pick(*FREE_RETURN))
    elif kind == "service":
        s.agent(
            sorry,
            s.pick(
                "I've passed your feedback and the chat history to our team lead.",
                "I've shared this with the team lead so it doesn't happen again.",
            ),
            s.pick("Let's fix the original problem now: what was it about?", "What was the original issue?"),
        )
        s.customer(s.pick("my refund for {oid}", "a late delivery, {oid}", "the {item} I want to return", "{oid}!!"))
        s.agent(s.pick("Thanks. I've looked at {oid} and added a note;", "I've found {oid} and flagged it;"),
                "the team will email you within {human_days} business day.")  # fmt: skip
    elif kind == "quality":
        s.agent(
            sorry,
            s.pick(
                "If something failed within {wy} years of delivery, our warranty covers it: send a photo and I'll "
                "start a claim.",
                "That's what our {wy}-year warranty is for; a photo is enough to start a claim.",
            ),
            s.pick("If it's within {rw} days of delivery, you can also simply return it.", ""),
        )
    else:
        s.agent(
            sorry,
            s.pick(
                "We're moving to smaller, paper-only packaging this year.",
                "Oversized boxes happen when items ship from two warehouses; we're working on it.",
            ),
            "I've passed your note on to the warehouse team.",
        )
    if s.chance(0.35):
        s.customer(
            s.pick(
                "I want compensation, not just a replacement.", "this is ridiculous. never ordering again.",
                "Not good enough!", "I'll be leaving a review about this.", "and what about my wasted time?",
            )
        )  # fmt: skip
        if s.chance(0.5):
            s.agent(
                "I hear you. I can refund the full {total} to your original payment method; I'm not able to offer "
                "anything beyond that, but I can pass your request to our customer care team."
            )
        return False
    return True


WARRANTY_OPENERS = (
    "my {item} is only {months} months old and {failure}.",
    "I bought the {product} {age} and {failure}. Is that covered?",
    "{failure} on my {item}. warranty?",
    "The {product} I got {age}: {failure}. What are my options?",
    "my {item} ({product}) {failure} and I've had it about {months} months. Can you help?",
    "what does your warranty actually cover? {failure} on my {item}",
    "bought a {product} {age} and now {failure} :(",
    "Do you repair {item}? Mine is {months} months old and {failure}.",
)
COVERED = (
    "Good news: that's covered.", "That shouldn't happen, and you're covered.",
    "Sorry it's let you down, {name}. That sounds like a manufacturing defect, which we cover.",
    "Yes, that's exactly what our warranty is for.", "I'm sorry to hear that! This one is on us.",
)  # fmt: skip
WARRANTY_TERMS = (
    "All our products have a {wy}-year warranty from delivery against manufacturing defects.",
    "Our {wy}-year warranty runs from the delivery date and covers defects in materials and workmanship.",
    "Everything we sell comes with a {wy}-year warranty from delivery for manufacturing faults.",
)
CLAIM_ASK = (
    "To start a claim, reply with your order number and a photo or short video of the problem.",
    "Could you send the order number and a photo or a quick video showing the fault?",
    "I just need the order number and a picture or a short clip of the issue to open the claim.",
)
CLAIM_GIVEN = (
    "{oid}, photo sent to your email", "{oid}. video attached", "ok: {oid}, pics attached",
    "order is {oid}, I'll email the video from {email}", "{oid} - photos are uploading now",
    "Here you go: {oid}. Sent two photos.", "it's {oid}. the video is a bit dark sorry",
)  # fmt: skip
CLAIM_LOGGED = (
    "Thanks, your claim is logged as case {case}.", "Got everything, thank you: the claim number is {case}.",
    "Perfect, I've opened claim {case} with your photos attached.",
)  # fmt: skip
CLAIM_DECISION = (
    "We decide within {claim_days} business days; if it's approved, we repair or replace it and pay for shipping "
    "both ways.",
    "Our warranty team replies within {claim_days} business days. Approved claims get a repair or a replacement, "
    "with shipping paid by us both ways.",
    "You'll have a decision within {claim_days} business days, and if a repair isn't possible we send a "
    "replacement; shipping is on us either way.",
)


def warranty(s: Scene) -> bool:
    expired = s.chance(0.15)
    accident = not expired and s.chance(0.12)
    if expired:
        s.slots["age"] = s.pick("almost 3 years ago", "in 2021", "like three years back", "ages ago, 2021 I think")
        s.slots["months"] = s.pick("30", "34", "40")
    else:
        s.slots["age"] = s.pick(
            "{months} months ago", "last spring", "about {months} months back", "in the summer sale"
        )
        s.slots["age"] = s.slots["age"].format_map(s.slots)
    s.customer(
        s.pick(*CUSTOMER_GREETINGS),
        s.pick(*WARRANTY_OPENERS),
        s.pick("I dropped it once, but it was fine after.", "It fell off the table last week.") if accident else "",
    )
    if expired:
        s.agent(
            s.pick("I'm sorry:", "Thanks for asking, and I'm sorry to say no here:"),
            s.pick(*WARRANTY_TERMS),
            "An item from {age} isn't covered anymore.",
            s.pick("", "I can suggest a local repair shop if that helps.", "Spare parts are on our website, though."),
        )
        return False
    if accident:
        s.agent(
            "I'm sorry it broke. Our {wy}-year warranty covers manufacturing defects, but not accidental damage like "
            "drops, so I can't approve a claim for this one.",
            s.pick("", "Spare parts are listed on the product page if you'd like to fix it yourself."),
        )
        return False
    if s.slots["kind"] == "electronics" and s.chance(0.5):
        s.agent(
            s.pick("Sorry about that!", "That's annoying, sorry."),
            s.pick(
                "Before we open a claim, could you try a reset? Hold the power button for 10 seconds while it charges.",
                "Could you first try a different cable and charger, just to rule those out?",
            ),
        )
        s.customer(s.pick("tried that already", "did it, no change", "Same thing, still broken.", "nope, nothing"))
        s.agent(s.pick(*COVERED), s.pick(*WARRANTY_TERMS), s.pick(*CLAIM_ASK))
    else:
        s.agent(s.pick(*COVERED), s.pick(*WARRANTY_TERMS), s.pick(*CLAIM_ASK))
    s.customer(s.pick(*CLAIM_GIVEN))
    s.agent(s.pick(*CLAIM_LOGGED), s.pick(*CLAIM_DECISION))
    return True


ELECTRIC = ("speaker", "headphones", "watch", "charger", "kettle", "lamp", "string lights", "headlamp")
SAFETY_OPENERS = (
    "the {item} got really hot and started smoking when I plugged it in!",
    "my {product} sparked when I turned it on.",
    "the {item} smells like burning plastic when it's on, is that normal??",
    "URGENT the {product} melted the cable, I need to talk to someone",
)
ESCALATION_OPENERS = (
    "I want to speak to a human. now.", "are you a bot? get me a real person please",
    "this is the third time im contacting you about {oid}. escalate this", "I'd like to talk to a manager.",
    "I'm going to dispute the charge with my bank if this isn't fixed today.",
    "I want to make a formal complaint about order {oid}.", "refund for {oid} STILL missing, get me a supervisor",
    "can I talk to someone who can actually do something?", "Put me through to your complaints department.",
    "I've emailed twice about the {product} and nobody replied. I need a person.",
    "No more copy-paste answers please, I need a human to look at {oid}.",
    "who's in charge there? {total} gone and no {item}", "I need a manager, not a script.",
)  # fmt: skip
ESCALATION_REASONS = (
    "", "", "It's about the {item} that arrived broken.", "The refund of {total} never showed up.",
    "I was charged twice for {oid}.", "My parcel has been lost since {order_day}.",
    "Your warranty people rejected my {item} for no reason.", "Nobody answers my emails.",
)  # fmt: skip
HANDOVER = (
    "I've passed this to our customer care team with the whole chat history.",
    "I'm handing this over to a person on our customer care team now, with the full chat.",
    "I've opened case {case} for our customer care team and attached this conversation.",
    "Done: a senior member of our team now has your case ({case}) and this chat.",
    "I've escalated it to customer care and marked it urgent.",
)
HUMAN_HOURS = (
    "They work {human_hours} and reply by email within {human_days} business day.",
    "You'll get an email from them within {human_days} business day; they work {human_hours}.",
    "Expect a reply by email within {human_days} business day (the team works {human_hours}).",
)


def escalation_to_human(s: Scene) -> bool:
    safety = s.slots["item"] in ELECTRIC and s.chance(0.5)
    openers = SAFETY_OPENERS if safety else ESCALATION_OPENERS
    said = joined((s.pick(*CUSTOMER_GREETINGS), s.pick(*openers), "" if safety else s.pick(*ESCALATION_REASONS)))
    s.customer(said)
    safety_first = ""
    if safety:
        safety_first = "Please stop using it and unplug it right away. " + s.pick(
            "Safety issues always go to a person on our team.", "Anything that overheats goes straight to a person."
        )
    elif s.chance(0.6):
        s.agent(
            s.pick(
                "I understand. So the team has everything, could you give me your order number first?",
                "Of course. What's the order number, so they can see the history?",
                "I'm sorry it's come to this. Can you tell me in a sentence what happened, so nobody asks you again?",
            )
        )
        s.customer(
            s.pick(
                "{oid}", "no. just get me a human", "{oid}. and hurry up", "it's {oid}, the {item} never arrived",
                "I already told you three times!!", "{oid} - charged {total}, no refund, no reply",
                "broken {item}, {oid}, waiting since {order_day}",
            )
        )  # fmt: skip
    s.agent(
        safety_first,
        s.pick(*HANDOVER),
        s.pick(*HUMAN_HOURS),
        s.pick(
            "", "", "You won't need to repeat anything, they can read the whole chat.",
            "Please hold off on a bank dispute until they reply; a dispute usually slows a refund down."
            if "dispute" in said else "" if safety else "I'm sorry it took this long.",
        ),
    )  # fmt: skip
    if s.chance(0.35):
        s.customer(
            s.pick(
                "fine.", "they'd better.", "ok thank you", "whatever", "email me at {email} please, not the old one",
                "ok. my number is {phone} if they'd rather call", "finally. thanks", "I'll be waiting.",
            )
        )  # fmt: skip
    return False


def small_talk(s: Scene) -> bool:
    remark, reply = s.pick(
        ("how's your day going?", "My day's going well, thanks for asking!"),
        (
            "just wanted to say the {product} is amazing, thanks!",
            "That's so lovely to hear, I'll pass it on to the team.",
        ),
        ("good morning from {city}!", "Good morning to {city}! Hope the weather is kind to you."),
        ("thanks for the fast delivery last time", "Thank you! The warehouse team will be glad to hear it."),
        ("lol your packaging made my cat very happy", "Ha, the cats always love the boxes most!"),
        ("what's your favourite thing in the shop?", "Hard to pick, but the {product} is a team favourite."),
        ("happy {weekday}!", "Happy {weekday} to you too!"),
        ("hello is anyone there", "Yes, I'm here!"),
        ("I love the new website design", "Thank you, I'll share that with our web team."),
        ("my {item} from you is still going strong after years", "That's great to hear, thanks for telling us."),
        ("you guys have the nicest emails haha", "Ha, thank you! Our writers will be pleased."),
    )
    s.slots["weekday"] = s.pick("Friday", "Monday", "weekend", "holidays")
    s.customer(s.pick(*CUSTOMER_GREETINGS), remark)
    s.agent(
        reply,
        s.pick(
            "How can I help you today?",
            "Is there anything I can help you with?",
            "Anything I can do for you?",
            "What can I do for you?",
        ),
    )
    if s.chance(0.55):
        question, answer = side_question(s)
        s.customer(question.split(" ", 1)[1] if s.chance(0.5) else question)
        s.agent(answer)
    elif s.chance(0.5):
        s.customer(
            s.pick("nope, just saying hi", "no that's all, have a good one", "all good, just wanted to say thanks")
        )
        s.agent(s.pick("Have a great day, {name}!", "Thanks for stopping by!", "Take care!"))
    return True


FLOWS: dict[str, Callable[[Scene], bool]] = {
    "returns": returns, "order_status": order_status, "refund": refund, "shipping_delay": shipping_delay,
    "cancellation": cancellation, "payment_failure": payment_failure, "account_access": account_access,
    "product_question": product_question, "complaint": complaint, "warranty": warranty,
    "escalation_to_human": escalation_to_human, "small_talk": small_talk,
}  # fmt: skip
assert tuple(FLOWS) == INTENTS


# ------------------------------------------------------------------------------------------- conversations


@dataclass
class Chat:
    intent: str
    resolved: bool
    turns: list[list[str]]  # [speaker, text]
    id: str = ""


def write_chat(rng: random.Random, intent: str) -> Chat:
    """One conversation of ``intent``: its flow, then optional extra turns, then some mess."""
    s = Scene(rng, make_slots(rng), pick_voice(rng, intent), backstory=intent != "small_talk")
    resolved = FLOWS[intent](s)
    if resolved and len(s.turns) <= 6 and s.turns[-1][0] == "agent" and s.chance(0.2) and intent != "small_talk":
        question, answer = side_question(s)
        s.customer(question)
        s.agent(answer)
    if resolved and len(s.turns) <= 6 and s.turns[-1][0] == "agent" and s.chance(0.4):
        s.customer(s.pick(*THANKS))
        if s.chance(0.8):
            close_politely(s)
    elif s.turns[-1][0] == "agent" and len(s.turns) < MAX_TURNS and s.chance(0.05):
        s.customer(s.pick("ok", "k", "hm ok", "fine", "👍"))  # a trailing customer turn
    if len(s.turns) < MAX_TURNS and s.chance(0.05):  # a second message before anyone answered
        s.turns.insert(1, ["customer", s.pick("hello??", "anyone there?", "??", "hellooo", "also it's urgent")])
    chat = Chat(intent, resolved, s.turns[:MAX_TURNS])
    add_mess(rng, chat)
    return chat


def add_mess(rng: random.Random, chat: Chat) -> None:
    """Boilerplate, entities and tags that ``clean_text`` removes; a few conversations get one each."""
    customer = [t for t in chat.turns if t[0] == "customer"]
    roll = rng.random()
    if roll < 0.06:
        rng.choice(customer)[1] += "\n\n" + rng.choice(
            ("Sent from my iPhone", "Sent from my Android", "Get Outlook for iOS")
        )
    elif roll < 0.10:  # an HTML export: the store name's "&" and apostrophes come out as entities
        escapable = [t for t in chat.turns if "&" in t[1]] or [t for t in chat.turns if "'" in t[1]] or chat.turns
        turn = rng.choice(escapable)
        turn[1] = turn[1].replace("&", "&amp;").replace("'", "&#39;").replace('"', "&quot;")
    elif roll < 0.12:
        turn = rng.choice([t for t in chat.turns if t[0] == "agent"] or customer)
        turn[1] = turn[1].replace(". ", ".<br>", 1)


def shingles(chat: Chat) -> set[str]:
    words = re.findall(r"[a-z]+", " ".join(text for _, text in chat.turns).lower())
    return {" ".join(words[i : i + 5]) for i in range(max(1, len(words) - 4))}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def generate(seed: int = DEFAULT_SEED, count: int = DEFAULT_COUNT) -> list[Chat]:
    """``count`` conversations: the written ones, then the planted duplicates and unanswered chats, shuffled."""
    if count < len(INTENTS):
        raise ValueError(f"--count must be at least {len(INTENTS)} (one per intent), got {count}")
    rng = random.Random(seed)
    exact, near, unanswered = count // 130, count // 195, count // 260
    written = count - exact - near - unanswered
    chats: list[Chat] = []
    seen: dict[str, list[set[str]]] = {intent: [] for intent in INTENTS}
    for n in range(written):
        intent = INTENTS[n % len(INTENTS)]
        for _attempt in range(200):
            chat = write_chat(rng, intent)
            grams = shingles(chat)
            if all(jaccard(grams, other) < SIMILAR for other in seen[intent]):
                break
        else:
            raise RuntimeError(f"{intent}: 200 draws in a row were near duplicates; the phrase pools are too small")
        seen[intent].append(grams)
        chats.append(chat)
    chats += plant_duplicates(rng, chats, exact, near) + [unanswered_chat(rng) for _ in range(unanswered)]
    rng.shuffle(chats)
    for number, chat in enumerate(chats, start=1):
        chat.id = f"chat-{number:05d}"
    return chats


def plant_duplicates(rng: random.Random, chats: list[Chat], exact: int, near: int) -> list[Chat]:
    """Exact copies (same text, new id) and near copies: a long conversation logged twice, the second time with a
    sign-off added to its last agent turn (not to a trailing customer turn, which prepare cuts)."""
    copies = [Chat(c.intent, c.resolved, [list(t) for t in c.turns]) for c in rng.sample(chats, exact)]
    long = [c for c in chats if len(shingles(c)) >= 120]
    for original in rng.sample(long, near):
        copy = Chat(original.intent, original.resolved, [list(t) for t in original.turns])
        turn = [t for t in copy.turns if t[0] == "agent"][-1]
        turn[1] += rng.choice(
            [s for s in (" Thanks again.", " Take care.", " Cheers!", " Bye for now.") if s not in turn[1]]
        )
        copies.append(copy)
    return copies


def unanswered_chat(rng: random.Random) -> Chat:
    """A customer writes twice and nobody answers: prepare drops it."""
    first = rng.choice(
        (
            "hi, is anyone there? my order hasn't arrived",
            "Hello, I need help with a return",
            "can someone call me back on {phone}",
        )
    )
    second = rng.choice(("hello???", "guess not", "ok I'll try later"))
    slots = make_slots(rng)
    return Chat(
        rng.choice(("order_status", "returns")), False, [["customer", first.format_map(slots)], ["customer", second]]
    )


def to_csv(chats: Sequence[Chat], rng: random.Random) -> str:
    """The per-turn CSV; the rows of a few simultaneous chats are interleaved, as a timestamp-sorted export is."""
    rows_by_chat = [
        [
            [c.id, str(i), speaker, text, c.intent, "true" if c.resolved else "false"]
            for i, (speaker, text) in enumerate(c.turns, start=1)
        ]
        for c in chats
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    i = 0
    while i < len(rows_by_chat):
        if i + 1 < len(rows_by_chat) and rng.random() < 0.03:
            a, b = rows_by_chat[i], rows_by_chat[i + 1]
            merged = [row for pair in zip(a, b, strict=False) for row in pair]
            shorter = min(len(a), len(b))
            writer.writerows(merged + a[shorter:] + b[shorter:])
            i += 2
        else:
            writer.writerows(rows_by_chat[i])
            i += 1
    return buffer.getvalue()


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument(
        "--count", type=int, default=DEFAULT_COUNT, help="conversations to write, planted copies included"
    )
    parser.add_argument("--out", type=Path, default=HERE / "raw.csv", help="CSV to write (default: raw.csv here)")
    return parser


_CARD_TEXT = re.compile(r"\b\d{4}(?: \d{4}){3}\b")
_IBAN_TEXT = re.compile(r"\b[A-Z]{2}\d{2}(?: [A-Z0-9]{1,4})+")


def mess_counts(chats: Sequence[Chat]) -> dict[str, int]:
    """How many conversations carry each kind of planted mess (the data card lists these)."""
    texts = ["\n".join(text for _, text in c.turns) for c in chats]
    keys = Counter("\n".join(text for _, text in c.turns) for c in chats)
    checks: dict[str, Callable[[Chat, str], bool]] = {
        "email": lambda c, t: bool(re.search(r"@[a-z]+\.[a-z]+", t)),
        "phone": lambda c, t: bool(re.search(r"555[ .-]\d{4}|7946 \d{4}", t)),
        "order id": lambda c, t: bool(re.search(r"#\d{7}|ORD-\d{4}-\d{5}", t)),
        "card number (Luhn-valid)": lambda c, t: any(
            luhn_digit(g[:-1]) == g[-1] for g in (m.replace(" ", "") for m in _CARD_TEXT.findall(_IBAN_TEXT.sub("", t)))
        ),
        "IBAN": lambda c, t: bool(re.search(r"\b(?:GB|DE|NL)\d{2} [A-Z0-9]{4} ", t)),
        "street address": lambda c, t: any(street in t for street in STREETS),
        "HTML entity or tag": lambda c, t: bool(re.search(r"&(?:amp|quot|#39);|<br>", t)),
        "mail footer or signature": lambda c, t: bool(re.search(r"Sent from my|Get Outlook|^-- ?$", t, re.M)),
        "consecutive turns of one speaker": lambda c, t: any(
            a[0] == b[0] for a, b in zip(c.turns, c.turns[1:], strict=False)
        ),
        "ends on a customer turn": lambda c, t: c.turns[-1][0] == "customer",
        "nobody answered": lambda c, t: all(speaker == "customer" for speaker, _ in c.turns),
    }
    counts = {name: sum(check(c, t) for c, t in zip(chats, texts, strict=True)) for name, check in checks.items()}
    counts["exact copy of another"] = sum(n - 1 for n in keys.values())
    return counts


def main(argv: Sequence[str] | None = None) -> None:
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.count < len(INTENTS):
        parser.error(f"--count must be at least {len(INTENTS)}, one conversation per intent")
    chats = generate(args.seed, args.count)
    write_text_atomically(args.out, to_csv(chats, random.Random(args.seed + 1)))
    intents = Counter(c.intent for c in chats)
    unresolved = Counter(c.intent for c in chats if not c.resolved)
    turns = [len(c.turns) for c in chats]
    print(f"wrote {args.out}: {len(chats)} conversations, {sum(turns)} turns ({min(turns)} to {max(turns)} each)")
    print("| intent | conversations | unresolved |\n|---|---:|---:|")
    for intent in INTENTS:
        print(f"| {intent} | {intents[intent]} | {unresolved[intent]} |")
    print("| planted | conversations |\n|---|---:|")
    for name, count in mess_counts(chats).items():
        print(f"| {name} | {count} |")


if __name__ == "__main__":
    main()
