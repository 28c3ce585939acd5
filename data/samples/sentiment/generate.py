"""Synthetic social-media posts with 3-way sentiment labels: ``posts.csv`` next to this file.

    python data/samples/sentiment/generate.py                 # rewrites posts.csv (seed 20240612)
    python data/samples/sentiment/generate.py --seed 7 --out /tmp/posts.csv

Decisions:
- Standard library only and one ``random.Random(seed)``: the same seed writes the same bytes.
- A post is an event about a fictional brand (a good one, a bad one, or a neutral fact or question),
  put in a label-specific frame, then roughened the way posts are: slang, typos, elongations
  ("soooo"), ALL CAPS, emojis, camelCase hashtags, @mentions and links, each with its own rate.
- The labels are not separable by one word: negative frames borrow positive words ("used to love",
  "not great"), positive frames borrow negative ones ("no complaints", "thought it'd be a
  nightmare"), neutral posts name the same brands and products and ask for the "best" way to reach
  support, and about 8% of posts are sarcastic (praise words, negative label). Sarcasm is known
  to the generator (``Post.sarcastic``) and reported in the data card, not written to the file.
- No two posts share a text: a collision is redrawn.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tunedesk.files import write_text_atomically

HERE = Path(__file__).resolve().parent
DEFAULT_SEED = 20240612
DEFAULT_OUT = HERE / "posts.csv"
PER_LABEL = 540
SARCASTIC = 135  # of the negative posts; 8.3% of all posts
MAX_CHARS = 280


@dataclass(frozen=True)
class Topic:
    """A kind of brand and the events people post about it. Events are verb phrases in the past tense
    (``{brand} lost my bag``); neutral lines are whole sentences."""

    brands: tuple[tuple[str, str], ...]  # (name, handle)
    emojis: tuple[str, ...]  # topical ones, which any post about it may carry
    bad: tuple[str, ...]
    good: tuple[str, ...]
    neutral: tuple[str, ...]


TOPICS: tuple[Topic, ...] = (
    Topic(
        brands=(("SkyNimbus Air", "@SkyNimbusAir"), ("Albatross Airways", "@FlyAlbatross")), emojis=("✈️", "🧳", "🛫"),
        bad=("cancelled my flight with zero notice", "lost my bag on a direct flight",
             "kept us on the tarmac for {few} hours", "charged me {price} for a carry-on",
             "moved my seat away from my kid without asking", "delayed my flight {few} times in one day"),
        good=("rebooked me in five minutes after the storm", "upgraded my seat for free",
              "found my lost bag and drove it to my house", "got me to {city} {mins} minutes early",
              "let me switch to an earlier flight at no charge", "had the kindest crew on my flight to {city}"),
        neutral=("flying {brand} to {city} on {day}", "does {brand} let you bring a guitar as a carry-on?",
                 "{brand} is adding direct flights to {city} next month",
                 "what's the baggage allowance on {brand} basic economy?",
                 "checking in for my {brand} flight to {city}", "{brand} changed its boarding groups this week"),
    ),
    Topic(
        brands=(("Parcelo", "@ParceloDelivers"), ("SwiftCrate", "@SwiftCrateHelp")), emojis=("📦", "🚚", "📬"),
        bad=("marked my parcel delivered when it never showed up", "left my package in the rain",
             "missed my delivery window {few} days in a row", "sent my parcel to {city} instead",
             "lost a package with a {price} order inside", "had a courier throw my box over the fence"),
        good=("delivered my parcel a day early", "had a courier who waited while I ran downstairs",
              "sorted a missing package in one message", "refunded my lost parcel within an hour",
              "got my order across the country in {few} days", "left my parcel exactly where I asked"),
        neutral=("my {brand} tracking page says out for delivery", "does {brand} deliver on Sundays in {city}?",
                 "{brand} is opening a pickup point near the station", "waiting on a {brand} package today",
                 "how do I change the delivery address on a {brand} parcel?",
                 "{brand} now sends a photo when they drop a parcel off"),
    ),
    Topic(
        brands=(("ZapCart", "@ZapCart"), ("Marketly", "@MarketlyShop")), emojis=("🛒", "🛍️", "👟"),
        bad=("charged me twice for one order", "sent me the wrong size for the third time",
             "cancelled my order after taking the money", "shipped my headphones with a cracked case",
             "kept my refund 'processing' for {few} weeks", "sold me an air fryer that died in {few} days"),
        good=("refunded me before I even sent the item back", "price-matched my air fryer without any fuss",
              "replaced my broken headphones the next day", "threw in free shipping on a tiny order",
              "fixed my order mix-up in one chat", "had the sneakers I wanted at half price"),
        neutral=("ordered new sneakers from {brand}, arriving {day}", "is the {brand} sale on {day} or {day2}?",
                 "{brand} vs the high street for headphones, which one?", "{brand} has a new returns page",
                 "comparing air fryers on {brand} right now", "does {brand} ship to {city}?"),
    ),
    Topic(
        brands=(("Voltix Mobile", "@VoltixMobile"), ("Telvio", "@TelvioCares")), emojis=("📶", "📱", "☎️"),
        bad=("added {price} to my phone bill for no reason", "dropped my signal every evening this week",
             "put me on hold for {long} minutes", "throttled my data plan halfway through the month",
             "charged me roaming fees in my own city", "took {few} days to port my number"),
        good=("fixed my phone bill in one call", "gave me extra data for free after an outage",
              "finally got signal working in my flat", "made switching my number painless",
              "waived my roaming charges after one message", "knocked {price} off my bill for loyalty"),
        neutral=("switching my data plan to {brand} next month", "does {brand} have coverage in {city}?",
                 "{brand} is changing its roaming charges", "what time does the {brand} store in {city} open?",
                 "{brand} is rolling out 5G in {city} this year", "anyone on the {brand} family plan?"),
    ),
    Topic(
        brands=(("Nookbook", "@Nookbook"), ("Pixelon", "@PixelonSupport")), emojis=("💻", "🎧", "📱"),
        bad=("bricked my phone with the latest update", "sold me a laptop whose battery dies by noon",
             "refused to fix a screen that cracked on its own", "made my earbuds disconnect every {few} minutes",
             "took {few} weeks to repair a two-month-old laptop", "removed a feature I used every day"),
        good=("replaced my cracked screen in under an hour", "made a phone whose battery lasts two days",
              "fixed my laptop for free even though it was out of warranty", "shipped an update that sped up my "
              "old phone", "sent new earbuds the day after I reported a fault", "made a laptop that's silent"),
        neutral=("{brand} announced a new phone for {day}", "thinking about the {brand} laptop or waiting a year",
                 "does the {brand} phone come in green?", "{brand} is holding a launch event in {city}",
                 "setting up my new {brand} earbuds", "{brand} published the specs for its next laptop"),
    ),
    Topic(
        brands=(("Streamly", "@StreamlyApp"), ("Flickbox", "@FlickboxTV")), emojis=("📺", "🍿", "🎬"),
        bad=("logged me out {few} times today", "pushed an update that crashes on launch",
             "raised my subscription by {price} without warning", "lost all my saved shows in the update",
             "cancelled my favourite show on a cliffhanger", "buffered through the whole finale"),
        good=("fixed the login bug within a day", "shipped an update that is actually faster",
              "refunded a subscription I forgot to cancel", "added the dark mode everyone asked for",
              "brought back my favourite show", "made downloads work offline on the plane"),
        neutral=("{brand} pushed an update overnight", "is {brand} down for anyone else in {city}?",
                 "{brand} is changing its subscription tiers on {day}", "what should I watch on {brand} tonight?",
                 "trying the {brand} app for the first time", "{brand} posted its release schedule for {day}"),
    ),
    Topic(
        brands=(("BankRiver", "@BankRiverHelp"), ("Coinpeak Bank", "@CoinpeakBank")), emojis=("🏦", "💳", "💸"),
        bad=("locked my account for no reason", "froze my card while I was abroad",
             "made me reset my password twice this week", "held my transfer for {few} days",
             "charged me a {price} fee for a paper statement", "lost my mortgage paperwork twice"),
        good=("unlocked my account in one chat", "refunded a fraudulent charge in minutes",
              "sent a new card to my hotel abroad", "spotted a scam before I fell for it",
              "made the new app so much easier to use", "waived an overdraft fee without me asking"),
        neutral=("{brand} is closing its branch in {city}", "how do I set up a standing order with {brand}?",
                 "{brand} changed its savings rate this week", "opening a {brand} account on {day}",
                 "does {brand} charge for international transfers?", "{brand} app has a new budgeting tab"),
    ),
    Topic(
        brands=(("Quickbite", "@QuickbiteEats"), ("Dishdash", "@DishdashFood")), emojis=("🍔", "🌯", "🛵"),
        bad=("brought my food {long} minutes late and cold", "forgot half my order again",
             "charged me {price} for a soggy burrito", "cancelled my order after an hour of waiting",
             "sent my dinner to the wrong flat", "gave my order to someone else"),
        good=("got my lunch here in {mins} minutes flat", "sent a driver who was lovely in the pouring rain",
              "refunded a missing burrito instantly", "added free dessert for a late order",
              "got a tricky allergy order exactly right", "delivered hot pizza in a snowstorm"),
        neutral=("ordering {brand} for the team lunch", "{brand} added three new restaurants in {city}",
                 "does {brand} deliver after midnight?", "{brand} has a new menu section for {day}",
                 "trying {brand} for the first time tonight", "what's good to order on {brand} in {city}?"),
    ),
    Topic(
        brands=(("Fernwood Coffee", "@FernwoodCoffee"), ("Beanhaus", "@BeanhausCafe")), emojis=("☕", "🥐", "🧁"),
        bad=("got my coffee order wrong three days running", "gave me a latte that was basically milk",
             "charged me {price} for a tiny pastry", "closed {mins} minutes early with people inside",
             "lost my loyalty points in the app update", "served me a cold croissant"),
        good=("made the best latte I've had all year", "remembered my usual order",
              "gave me a free coffee for waiting", "kept my lost laptop safe until I came back",
              "made my oat flat white perfectly", "opened early for the marathon runners"),
        neutral=("grabbing a {brand} coffee before work", "{brand} has a new menu from {day}",
                 "is {brand} open late in {city}?", "{brand} is opening a shop near the station in {city}",
                 "does {brand} do oat milk?", "meeting a friend at {brand} on {day}"),
    ),
    Topic(
        brands=(("RideNova", "@RideNova"), ("Zoomcab", "@ZoomcabRides")), emojis=("🚗", "🚕", "📍"),
        bad=("charged me a {price} cancellation fee when the driver cancelled",
             "had my driver take a {mins}-minute detour", "cancelled my booking an hour before",
             "surge-priced a two-mile ride to {price}", "sent a driver to the wrong side of the airport",
             "left me waiting {long} minutes in the cold"),
        good=("had a driver who returned my lost wallet", "refunded a bad ride with no questions",
              "got me to the airport with time to spare", "sent a driver who helped with all my bags",
              "found me a car in {few} minutes at 3am", "had a driver who kept the car spotless"),
        neutral=("booking a {brand} to the airport on {day}", "{brand} is launching in {city} this spring",
                 "does {brand} have a student discount?", "{brand} prices seem different in {city}",
                 "{brand} added a quiet-ride option", "first time using {brand} in {city}"),
    ),
    Topic(
        brands=(("Homely Furniture", "@HomelyFurniture"), ("Nestwell", "@NestwellHome")), emojis=("🛋️", "🪑", "🛏️"),
        bad=("sent a sofa with a broken leg", "missed the delivery slot for my desk twice",
             "sent a desk with half the screws missing", "took {few} weeks to deliver a bed frame",
             "charged me {price} to take away packaging", "sold me a wardrobe that arrived in pieces"),
        good=("delivered and built my sofa in an hour", "sent a desk that took ten minutes to assemble",
              "swapped a damaged sofa the next morning", "sent a spare part the same day",
              "gave me a discount for a scratched table", "made a bed frame that's actually sturdy"),
        neutral=("measuring the living room for a {brand} sofa", "waiting on a {brand} delivery slot for {day}",
                 "{brand} is opening a showroom in {city}", "does {brand} take old furniture away?",
                 "browsing {brand} for a new desk", "{brand} has a new catalogue out"),
    ),
)  # fmt: skip

CITIES = ("Leeds", "Austin", "Lisbon", "Denver", "Glasgow", "Toronto", "Dublin", "Osaka", "Phoenix", "Bristol")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

FRAMES: dict[str, tuple[str, ...]] = {
    "positive": (
        "{handle} {good}. thank you!!", "shoutout to {brand}, they {good}", "ok {brand} {good}, I'm impressed",
        "didn't expect much but {brand} {good}", "was dreading it but {brand} {good}",
        "no complaints at all, {brand} {good}", "thought it'd be a nightmare but {brand} {good}",
        "I hate to admit it but {brand} {good}", "not bad at all {brand}, you {good}",
        "huge thanks to {handle}, you {good}", "{brand} {good}. this is how it's done",
        "honestly {brand} {good} and made my week", "credit where it's due: {brand} {good}",
        "just want to say {brand} {good}", "{brand} {good}, customer for life",
        "can't believe {brand} {good}. so happy", "{handle} you {good}, you're the best",
        "love {brand}, they {good}", "great job {handle}, you {good}", "{brand} {good}. amazing",
        "perfect. {brand} {good}", "maybe {brand} isn't the worst after all, they {good}",
    ),
    "negative": (
        "{handle} you {bad}. unacceptable", "{brand} {bad} and support just sends copy-paste replies",
        "used to love {brand} but they {bad}", "not great: {brand} {bad}", "{brand} {bad}. never again",
        "so {brand} {bad} and nobody is answering", "{handle} why have you {bad}??",
        "{brand} {bad}. absolutely done with them", "had the best experience with {brand} for years, now they {bad}",
        "can someone at {handle} explain why you {bad}", "{brand} {bad}. {few} emails and zero answers",
        "fuming. {brand} {bad}", "{brand} {bad} and then told me it was my fault",
        "thanks for nothing {handle}, you {bad}", "{brand} {bad}. how is this ok",
        "I'm not happy, {brand} {bad}", "{brand} {bad} so I'm cancelling",
        "not a great look {handle}, you {bad}", "I'd love an explanation, {brand} {bad}",
    ),
    "neutral": (
        "{neutral}", "{neutral}", "{neutral}", "quick question: {neutral}", "{neutral}, anyone tried it?",
        "what's the best way to reach {brand} support?", "my friend loves {brand}, thinking of trying them",
        "is it true {brand} is the worst for delays? using them on {day}",
        "does anyone know if the {brand} deal is any good",
        "{neutral}. will report back", "{neutral} {handle}", "reading reviews of {brand} before I decide",
        "{brand} has a survey out asking what customers hate most",
    ),
    "sarcastic": (
        "great, {brand} {bad}. love that for me", "wow {brand} {bad}. great job guys",
        "love how {handle} {bad}. stellar service", "thanks {handle}, you {bad}. exactly what I needed today",
        "{brand} {bad}. 10/10 experience, would recommend", "so glad {brand} {bad}. best customer service ever",
        "nothing says premium like when {brand} {bad}", "oh perfect, {brand} {bad}. amazing",
        "fantastic, {brand} {bad}. really loving this", "{brand} {bad}. truly the best company in the world",
        "shoutout to {brand} who {bad}. legends", "what a great day to find out {brand} {bad}",
    ),
}  # fmt: skip

EMOJIS = {
    "positive": ("😍", "🙌", "🔥", "❤️", "😊", "👏", "✨", "🥳", "💯", "😭"),
    "negative": ("😡", "🤬", "😤", "😩", "💀", "👎", "😭", "🙄", "😒"),
    "neutral": ("🤔", "👀", "🤷"),  # plus the topic's own
    "sarcastic": ("🙄", "🙃", "👏", "😂", "💀", "😑"),
}
HASHTAGS = {
    "positive": ("#LoveIt", "#HappyCustomer", "#Grateful", "#GameChanger", "#BestServiceEver", "#Impressed"),
    "negative": ("#WorstServiceEver", "#NeverAgain", "#CustomerServiceFail", "#Disappointed", "#FixIt",
                 "#Unacceptable"),
    "neutral": ("#TravelTuesday", "#NewRelease", "#Question", "#TechNews", "#ShoppingDay", "#MondayMorning"),
    "sarcastic": ("#thanks", "#not", "#LoveThat", "#GreatJob", "#BestDayEver", "#CustomerService"),
}  # fmt: skip
SHARED_HASHTAGS = ("#CustomerService", "#MondayMood", "#help", "#update", "#delivery")
SLANG = (("you", "u"), ("your", "ur"), ("are", "r"), ("right now", "rn"), ("to be honest", "tbh"),
         ("really", "rly"), ("people", "ppl"), ("because", "bc"), ("thanks", "thx"), ("please", "pls"))  # fmt: skip
FILLERS = ("ngl", "lol", "lmao", "smh", "fr", "tbh", "imo", "idk", "bruh", "lowkey", "no cap", "istg")
MISSPELLINGS = (("definitely", "definately"), ("believe", "beleive"), ("again", "agian"), ("until", "untill"),
                ("because", "becuase"), ("delivered", "deliverd"), ("package", "pakage"), ("customer", "cusotmer"),
                ("honestly", "honeslty"), ("waiting", "wating"), ("really", "realy"), ("cancelled", "canceled"),
                ("minutes", "mins"), ("experience", "experiance"), ("explain", "explane"))  # fmt: skip
LINK_CHARS = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
ELONGATE = re.compile(r"\b(so|love|please|yes|no|why|omg|thanks|good|great|late|cold|done)\b")


@dataclass(frozen=True)
class Post:
    id: str
    text: str
    label: str
    sarcastic: bool
    brand: str


def fill(rng: random.Random, frame: str, topic: Topic) -> tuple[str, str]:
    """``frame`` with its slots filled from one brand of ``topic``; returns (text, brand)."""
    brand, handle = rng.choice(topic.brands)
    neutral = rng.choice(topic.neutral)
    text = frame.replace("{neutral}", neutral).replace("{good}", rng.choice(topic.good))
    text = text.replace("{bad}", rng.choice(topic.bad))
    day, day2 = rng.sample(DAYS, 2)
    values = {
        "brand": brand, "handle": handle, "city": rng.choice(CITIES), "day": day, "day2": day2,
        "few": str(rng.randint(2, 6)), "mins": str(rng.choice((10, 12, 15, 20, 25))),
        "long": str(rng.choice((40, 45, 50, 70, 90, 120))),
        "price": f"${rng.choice((12, 25, 35, 49, 60, 75, 99, 120))}",
    }  # fmt: skip
    text = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], text)
    return text.replace("?, ", "? ").replace("?. ", "? "), brand


def roughen(rng: random.Random, text: str, style: str, topic: Topic) -> str:
    """Make a clean sentence read like a post: each habit applied at its own rate."""
    if rng.random() < 0.25:
        for long, short in SLANG:
            text = re.sub(rf"\b{long}\b", short, text)
    if rng.random() < 0.2:
        known = [(right, wrong) for right, wrong in MISSPELLINGS if re.search(rf"\b{right}\b", text)]
        if known:
            right, wrong = rng.choice(known)
            text = re.sub(rf"\b{right}\b", wrong, text, count=1)
        else:
            text = typo(rng, text)
    if rng.random() < 0.3 and ELONGATE.search(text):
        text = ELONGATE.sub(lambda m: elongate(rng, m.group()), text, count=1)
    if rng.random() < 0.3:
        text = text[0].lower() + text[1:]
    if rng.random() < 0.08:
        text = text.upper()
    elif rng.random() < 0.15:
        words = text.split(" ")
        i = rng.randrange(len(words))
        words[i] = words[i].upper()
        text = " ".join(words)
    if rng.random() < 0.35:
        text = f"{rng.choice(FILLERS)} {text}" if rng.random() < 0.5 else f"{text} {rng.choice(FILLERS)}"
    tail = []
    if rng.random() < 0.55:
        pool = EMOJIS[style] + topic.emojis
        tail.append("".join(rng.choice(pool) for _ in range(rng.choice((1, 1, 2, 3)))))
    if rng.random() < 0.45:
        tags = HASHTAGS[style] + SHARED_HASHTAGS
        tail += rng.sample(tags, rng.choice((1, 1, 2)))
    if rng.random() < 0.1:
        tail.append(f"@{rng.choice(('jess', 'mike_t', 'dan', 'priya_k', 'the_real_sam', 'lou'))}{rng.randint(1, 99)}")
    if rng.random() < 0.12:
        tail.append("https://t.co/" + "".join(rng.choice(LINK_CHARS) for _ in range(10)))
    rng.shuffle(tail)
    post = " ".join([text, *tail])
    return post if len(post) <= MAX_CHARS else text


def typo(rng: random.Random, text: str) -> str:
    """Swap two adjacent letters, or drop one, in a random word of five letters or more."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not candidates:
        return text
    i = rng.choice(candidates)
    w = words[i]
    j = rng.randrange(1, len(w) - 2)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :] if rng.random() < 0.6 else w[:j] + w[j + 1 :]
    return " ".join(words)


def elongate(rng: random.Random, word: str) -> str:
    vowels = [i for i, c in enumerate(word) if c.lower() in "aeiouy"]
    i = vowels[-1] if vowels else len(word) - 1
    return word[: i + 1] + word[i] * rng.randint(2, 5) + word[i + 1 :]


def generate(seed: int = DEFAULT_SEED) -> list[Post]:
    """The sample's posts in file order, balanced across labels, with distinct texts."""
    rng = random.Random(seed)
    plan = ["positive"] * PER_LABEL + ["neutral"] * PER_LABEL
    plan += ["sarcastic"] * SARCASTIC + ["negative"] * (PER_LABEL - SARCASTIC)
    rng.shuffle(plan)
    seen: set[str] = set()
    posts: list[Post] = []
    for style in plan:
        while True:
            topic = rng.choice(TOPICS)
            text, brand = fill(rng, rng.choice(FRAMES[style]), topic)
            text = roughen(rng, text, style, topic)
            key = text.casefold()
            if key not in seen:
                break
        seen.add(key)
        label = "negative" if style == "sarcastic" else style
        posts.append(Post(f"post-{len(posts) + 1:04d}", text, label, style == "sarcastic", brand))
    return posts


def to_csv(posts: Sequence[Post]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("id", "text", "label"))
    writer.writerows((post.id, post.text, post.label) for post in posts)
    return buffer.getvalue()


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Write the synthetic social-media sentiment sample (posts.csv).")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output CSV file (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    posts = generate(args.seed)
    write_text_atomically(args.out, to_csv(posts))
    sarcastic = sum(post.sarcastic for post in posts)
    print(f"wrote {len(posts)} posts to {args.out} ({sarcastic} sarcastic, labelled negative)")


if __name__ == "__main__":
    main()
