"""Synthetic legal documents with reference summaries: ``documents.jsonl`` next to this file.

    python data/samples/legal/generate.py                     # rewrites documents.jsonl (seed 20240611)
    python data/samples/legal/generate.py --seed 7 --out /tmp/documents.jsonl

Decisions:
- Standard library only and one ``random.Random(seed)``: the same seed writes the same bytes.
- Every fact a summary states (parties, dates, amounts, terms, governing law) is drawn once and
  rendered by the same formatter into the document and into the summary, so a summary cannot state
  a name, number or date that its document lacks. Parties, addresses and cases are fictional;
  e-mail domains use the reserved ``.example`` suffix.
- Length comes from how many optional clauses a document takes from a bank of 53 general clauses,
  35 definitions and per-kind schedules, each used at most once per document. The longest
  documents take all of them, so they run past SmolLM2's 8,192-token context without repeating a
  paragraph.
- Most of this file is clause text: the shared bank first, then ``# Assembly``, then one builder per
  document kind with its own clauses, facts and summary sentences.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tunedesk.files import write_text_atomically

HERE = Path(__file__).resolve().parent
DEFAULT_SEED = 20240611
DEFAULT_OUT = HERE / "documents.jsonl"
# (size, how many documents, target length in characters): the mix the sample ships with.
SIZES: tuple[tuple[str, int, tuple[int, int]], ...] = (
    ("short", 18, (1_500, 4_000)),
    ("medium", 24, (5_000, 14_000)),
    ("long", 14, (16_000, 32_000)),
    ("very_long", 8, (42_000, 60_000)),
)
LONG_KINDS = ("software_licence", "services", "purchase")  # the kinds whose clause bank runs past 42,000 characters

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")  # fmt: skip
_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def words(n: int) -> str:
    """``n`` in words (0-99), as contracts spell small numbers."""
    assert 0 <= n < 100, f"only 0-99 are spelled, got {n}"
    if n < 20:
        return _ONES[n]
    return _TENS[n // 10] + ("" if n % 10 == 0 else "-" + _ONES[n % 10])


def spelled(n: int) -> str:
    """``thirty (30)``: the form a contract uses and a summary can quote the digits of."""
    return f"{words(n)} ({n})"


def day(date: dt.date) -> str:
    return f"{MONTHS[date.month - 1]} {date.day}, {date.year}"


def money(amount: int, currency: str) -> str:
    return f"{currency}{amount:,}"


def add_months(date: dt.date, months: int) -> dt.date:
    index = date.month - 1 + months
    return dt.date(date.year + index // 12, index % 12 + 1, min(date.day, 28))


def term_end(start: dt.date, months: int) -> dt.date:
    """The last day of a term of ``months`` starting on ``start``."""
    return add_months(start, months) - dt.timedelta(days=1)


# Parties, places and jurisdictions


@dataclass(frozen=True)
class Jurisdiction:
    law: str  # as it follows "the laws of"
    adjective: str  # "a Delaware corporation"
    cities: tuple[str, ...]
    postcode: str  # us | uk | ca
    court: str
    currency: str


JURISDICTIONS: tuple[Jurisdiction, ...] = (
    Jurisdiction("the State of Delaware", "Delaware", ("Wilmington, Delaware", "Dover, Delaware"), "us",
                 "Court of Chancery of the State of Delaware", "$"),
    Jurisdiction("the State of New York", "New York", ("New York, New York", "Albany, New York", "Rochester, New York"),
                 "us", "Supreme Court of the State of New York, County of New York", "$"),
    Jurisdiction("the State of California", "California", ("San Francisco, California", "Oakland, California",
                 "San Diego, California"), "us", "Superior Court of California, County of Alameda", "$"),
    Jurisdiction("the Commonwealth of Massachusetts", "Massachusetts", ("Boston, Massachusetts",
                 "Worcester, Massachusetts"), "us", "Superior Court of Suffolk County, Massachusetts", "$"),
    Jurisdiction("the State of Texas", "Texas", ("Austin, Texas", "Houston, Texas", "Dallas, Texas"), "us",
                 "District Court of Travis County, Texas", "$"),
    Jurisdiction("the State of Washington", "Washington", ("Seattle, Washington", "Spokane, Washington"), "us",
                 "Superior Court of Washington for King County", "$"),
    Jurisdiction("the State of Illinois", "Illinois", ("Chicago, Illinois", "Naperville, Illinois"), "us",
                 "Circuit Court of Cook County, Illinois", "$"),
    Jurisdiction("the State of Colorado", "Colorado", ("Denver, Colorado", "Boulder, Colorado"), "us",
                 "District Court for the City and County of Denver, Colorado", "$"),
    Jurisdiction("the State of Oregon", "Oregon", ("Portland, Oregon", "Eugene, Oregon"), "us",
                 "Circuit Court of the State of Oregon for Multnomah County", "$"),
    Jurisdiction("the State of Georgia", "Georgia", ("Atlanta, Georgia", "Savannah, Georgia"), "us",
                 "Superior Court of Fulton County, Georgia", "$"),
    Jurisdiction("England and Wales", "English", ("London, England", "Manchester, England", "Bristol, England"), "uk",
                 "High Court of Justice of England and Wales, Business and Property Courts", "£"),
    Jurisdiction("the Province of Ontario", "Ontario", ("Toronto, Ontario", "Ottawa, Ontario"), "ca",
                 "Ontario Superior Court of Justice", "$"),
)  # fmt: skip

NAME_HEADS = ("Harbor", "North", "Bramble", "Castle", "Drift", "Ember", "Fair", "Glen", "Iron", "Juniper", "Kestrel",
              "Larch", "Mere", "Nettle", "Oak", "Pine", "Quarry", "Red", "Silver", "Tide", "West", "Yarrow", "Ash",
              "Bell", "Cobalt", "Dun", "Fox", "Granite", "Hollow", "King", "Lumen", "Marrow", "Orchard", "Pell", "Rook",
              "Salt", "Thistle", "Wren", "Clear", "Stone")  # fmt: skip
NAME_TAILS = ("view", "gate", "wood", "field", "line", "haven", "moor", "ford", "bridge", "crest", "well", "mark",
              "stead", "hurst", "bay", "ridge", "vale", "brook")  # fmt: skip
INDUSTRIES = ("Analytics", "Biotech", "Logistics", "Software", "Holdings", "Foods", "Robotics", "Media", "Health",
              "Energy", "Textiles", "Freight", "Capital", "Labs", "Systems", "Outfitters", "Pharma", "Realty",
              "Studios", "Networks")  # fmt: skip
SUFFIXES = {"us": ("LLC", "Inc.", "Corporation", "LLC", "Inc."), "uk": ("Ltd", "Limited", "plc"),
            "ca": ("Inc.", "Ltd.")}  # fmt: skip
ENTITY = {"LLC": "limited liability company", "Inc.": "corporation", "Corporation": "corporation",
          "Ltd.": "corporation"}  # fmt: skip
FIRST_NAMES = ("Maria", "James", "Aisha", "Tomasz", "Priya", "Daniel", "Sofia", "Kwame", "Elena", "Marcus", "Yuki",
               "Hannah", "Rafael", "Ingrid", "Oliver", "Nadia", "Samuel", "Chloe", "Mateo", "Leila", "Victor", "Grace",
               "Anders", "Fatima", "Connor", "Mei", "Jonah", "Beatriz", "Tobias", "Ruth")  # fmt: skip
LAST_NAMES = ("Ortega", "Whitfield", "Okafor", "Lindqvist", "Ramanathan", "Kowalski", "Brennan", "Takahashi",
              "Delacroix", "Abernathy", "Mensah", "Castellanos", "Haverford", "Novak", "Sutherland", "Achebe",
              "Gallagher", "Moreau", "Petrakis", "Valdivia", "Eriksen", "Fairbanks", "Iwasaki", "Quintero",
              "Rosenthal", "Szabo", "Thornbury", "Underwood", "Vasquez", "Yilmaz")  # fmt: skip
STREETS = ("Harbor", "Juniper", "Maple", "Granite", "Orchard", "Beacon", "Willow", "Copper", "Lantern", "Foundry",
           "Meadow", "Quarry", "Ridge", "Summit", "Tanner", "Wharf")  # fmt: skip
STREET_TYPES = ("Street", "Avenue", "Road", "Boulevard", "Lane", "Way", "Drive", "Place")
TITLES = ("Chief Executive Officer", "General Counsel", "Chief Financial Officer", "President", "Managing Director",
          "Vice President, Operations", "Director")  # fmt: skip


@dataclass(frozen=True)
class Party:
    name: str
    short: str
    description: str
    address: str
    signatory: str
    signatory_title: str
    email: str


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def address(rng: random.Random, place: Jurisdiction) -> str:
    city = rng.choice(place.cities)
    street = f"{rng.randint(10, 9800)} {rng.choice(STREETS)} {rng.choice(STREET_TYPES)}"
    digit, letter = lambda: str(rng.randint(1, 9)), lambda: rng.choice("ABCEGHJKLMNPRSTVWXY")
    if place.postcode == "uk":
        area = rng.choice(("EC", "WC", "SE", "NW", "BS", "M"))
        return f"{street}, {city} {area}{digit()} {digit()}{letter()}{letter()}"
    if place.postcode == "ca":
        first = "M" if city.startswith("Toronto") else "K"
        return f"{street}, {city} {first}{digit()}{letter()} {digit()}{letter()}{digit()}"
    suite = f", Suite {rng.randint(1, 30) * 100}" if rng.random() < 0.5 else ""
    return f"{street}{suite}, {city} {rng.randint(10000, 99950):05d}"


class Names:
    """Company names drawn without replacement (720 stems), so no two companies in the sample share one."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.stems = [head + tail for head in NAME_HEADS for tail in NAME_TAILS]
        rng.shuffle(self.stems)

    def company(self, place: Jurisdiction) -> Party:
        rng = self.rng
        stem = self.stems.pop()
        industry, suffix = rng.choice(INDUSTRIES), rng.choice(SUFFIXES[place.postcode])
        if place.postcode == "uk":
            kind = "public" if suffix == "plc" else "private"
            description = f"a {kind} limited company registered in England and Wales"
        elif place.postcode == "ca":
            description = "an Ontario corporation"
        else:
            description = f"{'an' if place.adjective[0] in 'AEIOU' else 'a'} {place.adjective} {ENTITY[suffix]}"
        return Party(
            name=f"{stem} {industry} {suffix}",
            short=stem,
            description=description,
            address=address(rng, place),
            signatory=person(rng),
            signatory_title=rng.choice(TITLES),
            email=f"legal@{stem.lower()}{industry.lower()}.example",
        )

    def individual(self, place: Jurisdiction) -> Party:
        name = person(self.rng)
        return Party(
            name=name,
            short=name.split()[-1],
            description="an individual",
            address=address(self.rng, place),
            signatory=name,
            signatory_title="",
            email=f"{name.lower().replace(' ', '.')}@mail.example",
        )


# The clause bank. Templates are filled from a document's context (see ``contract_context``):
# {A} and {B} are the parties' defined terms, {payer}/{payee} who pays whom.


@dataclass(frozen=True)
class Clause:
    heading: str
    paragraphs: tuple[str, ...]
    commercial: bool = False  # only in agreements where one party pays the other for something


GENERAL: tuple[Clause, ...] = (
    Clause("Interpretation", (
        "In this Agreement, headings are for convenience only and do not affect interpretation; the singular "
        "includes the plural and the reverse; the words \"including\" and \"includes\" are to be read as if followed "
        "by \"without limitation\"; and a reference to a statute includes that statute as amended or re-enacted.",
        "A reference to a day is to a calendar day unless a Business Day is specified. Where the day on which any "
        "act is to be done is not a Business Day, that act may be done on the next Business Day. No rule of "
        "construction applies to the disadvantage of a Party on the basis that the Party drafted this Agreement.",
    )),
    Clause("Confidentiality", (
        "Each Party shall hold the other Party's Confidential Information in confidence, shall use it only to "
        "perform its obligations or exercise its rights under this Agreement, and shall not disclose it to any "
        "person other than its employees, officers, professional advisers and subcontractors who need to know it "
        "for those purposes and who are bound by written obligations of confidentiality no less protective than "
        "those set out in this Agreement.",
        "Each Party shall protect the other Party's Confidential Information using at least the degree of care it "
        "uses to protect its own information of a similar nature, and in no event less than reasonable care. The "
        "obligations in this Section continue for {survival_years} years after the expiry or termination of this "
        "Agreement, and for trade secrets for so long as the information remains a trade secret under applicable law.",
    )),
    Clause("Exceptions to Confidentiality", (
        "Confidential Information does not include information that (a) is or becomes generally available to the "
        "public other than through a breach of this Agreement; (b) was lawfully known to the receiving Party before "
        "disclosure, as shown by its written records; (c) is lawfully received from a third party without a duty of "
        "confidence; or (d) is independently developed by the receiving Party without use of or reference to the "
        "disclosing Party's Confidential Information.",
    )),
    Clause("Compelled Disclosure", (
        "If the receiving Party is required by law, regulation or order of a court or governmental authority to "
        "disclose any Confidential Information, it shall, to the extent legally permitted, give the disclosing Party "
        "prompt written notice of the requirement so that the disclosing Party may seek a protective order, shall "
        "cooperate with the disclosing Party's reasonable efforts to obtain such an order at the disclosing Party's "
        "expense, and shall disclose only that portion of the Confidential Information that it is legally required "
        "to disclose.",
    )),
    Clause("Return and Destruction of Materials", (
        "Within {cure_days} days after the termination or expiry of this Agreement, or earlier on written request, "
        "the receiving Party shall return or destroy all documents and other materials containing the disclosing "
        "Party's Confidential Information and shall certify the destruction in writing signed by an officer. A Party "
        "may retain copies held in automatic electronic archives and backups, and copies it must keep to comply "
        "with law, provided that the retained copies remain subject to this Agreement.",
    )),
    Clause("Intellectual Property", (
        "Except as expressly set out in this Agreement, nothing in this Agreement transfers or licenses any "
        "Intellectual Property Rights from one Party to the other. Each Party retains all right, title and interest "
        "in and to its Background Intellectual Property, including any improvements to it made by that Party.",
        "All Intellectual Property Rights in Deliverables created specifically for {payer} under this Agreement vest "
        "in {payer} upon full payment of the Fees for them. {payee} hereby assigns those rights to {payer} with full "
        "title guarantee and waives, and shall procure that its personnel waive, any moral rights in them.",
    ), commercial=True),
    Clause("Feedback", (
        "If a Party provides suggestions, comments or other feedback about the other Party's products or services, "
        "the recipient may use that feedback without restriction and without obligation, provided that it does not "
        "identify the Party that provided it or disclose that Party's Confidential Information.",
    )),
    Clause("Representations and Warranties", (
        "Each Party represents and warrants to the other that (a) it is duly organised, validly existing and in good "
        "standing under the laws of its place of organisation; (b) it has full power and authority to enter into and "
        "perform this Agreement; (c) the execution of this Agreement has been duly authorised by all necessary "
        "corporate action; and (d) this Agreement constitutes its legal, valid and binding obligation, enforceable "
        "against it in accordance with its terms.",
        "Each Party further represents that the execution and performance of this Agreement do not conflict with its "
        "constitutional documents, any agreement by which it is bound or any judgment, order or law applicable to it, "
        "and that no consent of any governmental authority is required for it to perform this Agreement that has "
        "not been obtained.",
    )),
    Clause("Disclaimer of Warranties", (
        "EXCEPT AS EXPRESSLY SET OUT IN THIS AGREEMENT, NEITHER PARTY MAKES ANY WARRANTY, CONDITION OR REPRESENTATION "
        "OF ANY KIND, WHETHER EXPRESS, IMPLIED OR STATUTORY, INCLUDING ANY IMPLIED WARRANTY OF MERCHANTABILITY, "
        "FITNESS FOR A PARTICULAR PURPOSE, TITLE OR NON-INFRINGEMENT, AND ALL SUCH WARRANTIES ARE EXCLUDED TO THE "
        "FULLEST EXTENT PERMITTED BY LAW.",
    )),
    Clause("Indemnification by {A}", (
        "{A} shall defend, indemnify and hold harmless {B} and its officers, directors and employees from and against "
        "all losses, damages, liabilities, costs and expenses, including reasonable legal fees, arising out of any "
        "third-party claim to the extent caused by (a) the gross negligence or wilful misconduct of {A}; (b) a breach "
        "by {A} of applicable law; or (c) bodily injury or damage to tangible property caused by {A} or its personnel.",
    )),
    Clause("Indemnification by {B}", (
        "{B} shall defend, indemnify and hold harmless {A} and its officers, directors and employees from and against "
        "all losses, damages, liabilities, costs and expenses, including reasonable legal fees, arising out of any "
        "third-party claim to the extent caused by (a) materials or instructions supplied by {B}; (b) the use of any "
        "deliverable by {B} in breach of this Agreement; or (c) the gross negligence or wilful misconduct of {B}.",
    )),
    Clause("Indemnification Procedure", (
        "A Party seeking indemnification shall notify the indemnifying Party in writing promptly after becoming aware "
        "of the claim, provided that a delay in notice relieves the indemnifying Party of its obligations only to the "
        "extent it is prejudiced by the delay. The indemnifying Party shall have sole control of the defence and "
        "settlement of the claim, except that it may not settle any claim in a way that imposes an obligation on or "
        "admits fault of the indemnified Party without that Party's prior written consent.",
        "The indemnified Party shall give the indemnifying Party reasonable assistance at the indemnifying Party's "
        "expense and may participate in the defence with counsel of its own choosing at its own cost.",
    )),
    Clause("Limitation of Liability", (
        "Except for liability arising from a breach of confidentiality, a Party's indemnification obligations, or "
        "fraud, gross negligence or wilful misconduct, the total aggregate liability of each Party arising out of or "
        "in connection with this Agreement, whether in contract, tort (including negligence) or otherwise, shall not "
        "exceed {cap}.",
        "Nothing in this Agreement limits or excludes liability for death or personal injury caused by negligence, "
        "for fraud or fraudulent misrepresentation, or for any other liability that cannot be limited or excluded "
        "under applicable law.",
    )),
    Clause("Exclusion of Consequential Damages", (
        "IN NO EVENT SHALL EITHER PARTY BE LIABLE TO THE OTHER FOR ANY INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY OR "
        "CONSEQUENTIAL DAMAGES, OR FOR ANY LOSS OF PROFITS, REVENUE, GOODWILL OR ANTICIPATED SAVINGS, OR FOR ANY LOSS "
        "OR CORRUPTION OF DATA, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGES.",
    )),
    Clause("Insurance", (
        "During the term of this Agreement and for one year thereafter, {payee} shall maintain, with insurers of good "
        "financial standing, commercial general liability insurance with a limit of not less than {insurance} per "
        "occurrence, professional liability insurance with a limit of not less than {insurance} per claim, and "
        "workers' compensation insurance as required by law.",
        "On request, {payee} shall provide {payer} with certificates of insurance evidencing the required coverage "
        "and shall give at least {notice_days} days' prior written notice of any cancellation or material reduction "
        "of that coverage.",
    ), commercial=True),
    Clause("Compliance with Laws", (
        "Each Party shall comply with all laws, regulations and binding codes of practice applicable to its "
        "performance of this Agreement, and shall obtain and maintain all licences, permits and consents it needs to "
        "perform its obligations. Each Party shall promptly notify the other if it becomes aware of any breach of "
        "this Section.",
    )),
    Clause("Anti-Corruption", (
        "Neither Party shall, directly or indirectly, offer, promise, give, request or accept any bribe, kickback or "
        "other improper payment or advantage in connection with this Agreement. Each Party shall maintain adequate "
        "policies and procedures designed to prevent bribery by persons associated with it and shall keep accurate "
        "books and records of all payments made in connection with this Agreement.",
    )),
    Clause("Export Control and Sanctions", (
        "Each Party shall comply with all applicable export control and economic sanctions laws. Neither Party shall "
        "export, re-export or transfer any goods, software or technical data received under this Agreement to any "
        "country, entity or person to which such export is prohibited, or for any end use prohibited by those laws, "
        "without first obtaining all required government authorisations.",
    )),
    Clause("Data Protection", (
        "To the extent that a Party processes Personal Data on behalf of the other Party in connection with this "
        "Agreement, it shall process that Personal Data only on the documented instructions of the other Party, "
        "ensure that persons authorised to process it are bound by confidentiality, and implement appropriate "
        "technical and organisational measures to protect it against unauthorised or unlawful processing and "
        "against accidental loss, destruction or damage.",
        "The processing Party shall notify the other Party without undue delay, and in any event within seventy-two "
        "(72) hours, after becoming aware of a personal data breach affecting that Personal Data, and shall provide "
        "such information and assistance as the other Party reasonably requires to meet its own obligations to "
        "notify regulators and data subjects.",
    )),
    Clause("Information Security", (
        "{payee} shall maintain a written information security programme that includes access controls based on "
        "least privilege, multi-factor authentication for remote and administrative access, encryption of data in "
        "transit and at rest using industry-standard algorithms, vulnerability scanning at least quarterly, and an "
        "incident response plan that is tested at least once in each calendar year.",
        "{payee} shall remediate vulnerabilities rated critical within fifteen (15) days and those rated high within "
        "thirty (30) days of their discovery, and shall report the status of remediation to {payer} on request.",
    ), commercial=True),
    Clause("Audit Rights", (
        "On not less than {audit_days} days' written notice, and no more than once in any twelve-month period, "
        "{payer} or an independent auditor appointed by it may inspect the books, records and facilities of {payee} "
        "that relate to this Agreement, during normal business hours and in a manner that does not unreasonably "
        "disrupt {payee}'s business.",
        "If an audit reveals an overcharge of more than five percent (5%) for any period, {payee} shall refund the "
        "overcharge within {payment_days} days and shall reimburse the reasonable cost of the audit.",
    ), commercial=True),
    Clause("Records", (
        "{payee} shall keep complete and accurate records relating to the Fees, the services performed and the "
        "expenses charged under this Agreement for at least {records_years} years after the year to which they "
        "relate, in a form that allows them to be readily audited.",
    ), commercial=True),
    Clause("Taxes", (
        "All amounts payable under this Agreement are exclusive of sales, use, value added and similar taxes, which "
        "{payer} shall pay in addition where applicable on receipt of a valid tax invoice. Each Party is responsible "
        "for taxes on its own income. If {payer} is required by law to withhold any tax from a payment, it shall pay "
        "the amount withheld to the relevant authority and provide {payee} with an official receipt.",
    ), commercial=True),
    Clause("Invoicing and Payment", (
        "{payee} shall invoice {payer} in arrears at the end of each calendar month, and each invoice shall set out "
        "in reasonable detail the amounts due and the basis on which they were calculated. {payer} shall pay each "
        "undisputed invoice within {payment_days} days of receipt by electronic funds transfer to the account "
        "designated by {payee} in writing.",
        "Any amount not paid when due shall bear interest from the due date until the date of payment at the rate of "
        "{late_rate} percent per month, or the maximum rate permitted by law if lower.",
    ), commercial=True),
    Clause("Disputed Invoices", (
        "If {payer} disputes any part of an invoice in good faith, it shall notify {payee} in writing within fifteen "
        "(15) days of receipt, giving reasons, and shall pay the undisputed portion in accordance with this "
        "Agreement. The Parties shall use reasonable efforts to resolve the dispute within thirty (30) days, after "
        "which either Party may refer it to the dispute resolution procedure in this Agreement.",
    ), commercial=True),
    Clause("Termination for Convenience", (
        "Either Party may terminate this Agreement for convenience by giving the other Party not less than "
        "{notice_days} days' written notice. On such a termination, {payer} shall pay {payee} for all work performed "
        "and expenses properly incurred up to the date of termination.",
    ), commercial=True),
    Clause("Termination for Cause", (
        "Either Party may terminate this Agreement immediately by written notice if the other Party (a) commits a "
        "material breach of this Agreement which is incapable of remedy, or which is capable of remedy and is not "
        "remedied within {cure_days} days after written notice requiring it to be remedied; or (b) becomes "
        "insolvent, makes an assignment for the benefit of creditors, has a receiver or administrator appointed over "
        "any of its assets, or ceases to carry on business.",
    )),
    Clause("Effect of Termination", (
        "Termination or expiry of this Agreement does not affect the rights and remedies of either Party that have "
        "accrued as at the date of termination. On termination each Party shall promptly return the other Party's "
        "property in its possession, and any licence granted under this Agreement shall end except to the extent "
        "this Agreement expressly provides otherwise.",
    )),
    Clause("Survival", (
        "The provisions of this Agreement that by their nature are intended to survive termination or expiry, "
        "including those relating to confidentiality, indemnification, limitation of liability, payment of accrued "
        "amounts, records, audit and governing law, shall survive the termination or expiry of this Agreement.",
    )),
    Clause("Force Majeure", (
        "Neither Party shall be liable for any delay or failure to perform its obligations (other than obligations to "
        "pay money) to the extent caused by events beyond its reasonable control, including acts of God, flood, "
        "fire, earthquake, epidemic, war, terrorism, civil unrest, labour disputes not involving its own workforce, "
        "failure of public utilities or acts of government.",
        "The affected Party shall notify the other Party promptly of the event and its expected duration and shall "
        "use reasonable efforts to mitigate its effect. If the event continues for more than {fm_days} consecutive "
        "days, the other Party may terminate this Agreement by written notice without liability.",
    )),
    Clause("Relationship of the Parties", (
        "The Parties are independent contractors. Nothing in this Agreement creates a partnership, joint venture, "
        "agency, fiduciary or employment relationship between the Parties, and neither Party has authority to bind "
        "the other or to incur any obligation on its behalf.",
    )),
    Clause("Non-Solicitation", (
        "During the term of this Agreement and for {non_solicit_months} months afterwards, neither Party shall, "
        "without the other Party's prior written consent, directly solicit for employment any employee of the other "
        "Party with whom it had material contact in connection with this Agreement. General advertisements not "
        "targeted at those employees do not breach this Section.",
    )),
    Clause("Publicity", (
        "Neither Party shall issue any press release or public announcement concerning this Agreement, or use the "
        "other Party's name, logo or trade marks in any marketing material, without the prior written consent of the "
        "other Party, except as required by law or the rules of a recognised stock exchange.",
    )),
    Clause("Assignment", (
        "Neither Party may assign, transfer or novate any of its rights or obligations under this Agreement without "
        "the prior written consent of the other Party, which shall not be unreasonably withheld, except that either "
        "Party may assign this Agreement without consent to an Affiliate or to a successor to all or substantially "
        "all of its business or assets to which this Agreement relates. Any purported assignment in breach of this "
        "Section is void.",
    )),
    Clause("Subcontracting", (
        "{payee} may subcontract any of its obligations only with the prior written consent of {payer}. {payee} "
        "remains responsible for all acts and omissions of its subcontractors as if they were its own, and shall "
        "ensure that each subcontractor is bound by obligations consistent with this Agreement.",
    ), commercial=True),
    Clause("Notices", (
        "Any notice under this Agreement shall be in writing and delivered by hand, by registered mail or by "
        "nationally recognised courier to the address of the receiving Party set out at the head of this Agreement, "
        "with a copy by e-mail to {email_a} (for {A}) or {email_b} (for {B}), or to such other address as a Party "
        "notifies to the other in accordance with this Section.",
        "A notice is deemed received on delivery if delivered by hand or courier, or on the third Business Day after "
        "posting if sent by registered mail. A notice sent by e-mail alone is not valid notice of breach or "
        "termination.",
    )),
    Clause("Dispute Resolution", (
        "The Parties shall attempt in good faith to resolve any dispute arising out of or in connection with this "
        "Agreement by negotiation between senior executives with authority to settle it. Either Party may initiate "
        "negotiation by written notice describing the dispute.",
        "If the dispute is not resolved within {escalation_days} days of that notice, it shall be finally resolved by "
        "binding arbitration before {arbitrators} seated in {venue}, conducted in English. The arbitral award is "
        "final and may be entered in any court of competent jurisdiction. Nothing in this Section prevents a Party "
        "from seeking urgent interim relief from a court.",
    )),
    Clause("Equitable Relief", (
        "Each Party acknowledges that a breach of its obligations of confidentiality or of any restriction on the use "
        "of the other Party's Intellectual Property Rights may cause irreparable harm for which damages would not be "
        "an adequate remedy, and that the other Party is entitled to seek injunctive relief and specific performance "
        "for any threatened or actual breach, without the need to post a bond.",
    )),
    Clause("Severability", (
        "If any provision of this Agreement is held invalid, illegal or unenforceable in any jurisdiction, that "
        "provision shall be modified to the minimum extent necessary to make it enforceable, and the validity of the "
        "remaining provisions, and of that provision in any other jurisdiction, shall not be affected.",
    )),
    Clause("Waiver", (
        "No failure or delay by a Party in exercising any right or remedy under this Agreement operates as a waiver "
        "of it, and no single or partial exercise of a right or remedy prevents any further exercise of it or of any "
        "other right or remedy. A waiver is effective only if given in writing and signed by the waiving Party.",
    )),
    Clause("Amendment", (
        "No amendment or variation of this Agreement is effective unless it is in writing, refers expressly to this "
        "Agreement and is signed by an authorised representative of each Party.",
    )),
    Clause("Entire Agreement", (
        "This Agreement, together with its Schedules, constitutes the entire agreement between the Parties "
        "concerning its subject matter and supersedes all prior agreements, proposals, negotiations and "
        "understandings, whether written or oral. Each Party acknowledges that it has not relied on any statement "
        "or representation not expressly set out in this Agreement.",
    )),
    Clause("Counterparts and Electronic Signatures", (
        "This Agreement may be executed in any number of counterparts, each of which is an original and all of which "
        "together constitute one instrument. Signatures delivered by e-mail in portable document format or through "
        "an electronic signature service have the same effect as original signatures.",
    )),
    Clause("Third-Party Rights", (
        "Except as expressly provided for indemnified persons, nothing in this Agreement confers any right or "
        "remedy on any person other than the Parties and their permitted successors and assigns.",
    )),
    Clause("Further Assurance", (
        "Each Party shall, at the reasonable request and cost of the other Party, execute such documents and do such "
        "acts as may be reasonably necessary to give full effect to this Agreement.",
    )),
    Clause("Costs and Expenses", (
        "Except as otherwise provided in this Agreement, each Party shall bear its own costs and expenses, including "
        "legal and accounting fees, incurred in connection with the negotiation, preparation and execution of this "
        "Agreement.",
    )),
    Clause("Business Continuity", (
        "{payee} shall maintain and test at least annually a business continuity and disaster recovery plan designed "
        "to restore the performance of its obligations under this Agreement within forty-eight (48) hours of a "
        "disruptive event, and shall provide a summary of the plan and of its most recent test results to {payer} "
        "on request.",
    ), commercial=True),
    Clause("Conflicts of Interest", (
        "{payee} shall promptly disclose to {payer} in writing any actual or potential conflict of interest that "
        "arises in connection with the performance of this Agreement and shall take such steps as {payer} "
        "reasonably requires to avoid or manage it.",
    ), commercial=True),
    Clause("Supplier Code of Conduct", (
        "{payee} shall conduct its business ethically, shall not use forced, bonded or child labour, shall provide "
        "its workers with safe and healthy working conditions, shall not discriminate in hiring or employment on the "
        "basis of any characteristic protected by law, and shall comply with applicable environmental laws in "
        "performing this Agreement.",
    ), commercial=True),
    Clause("Order of Precedence", (
        "If there is any conflict or inconsistency between the clauses of this Agreement and its Schedules, the "
        "clauses prevail, followed by the Schedules in alphabetical order, unless a Schedule expressly states that it "
        "is to prevail in relation to a specified provision.",
    )),
    Clause("Set-Off", (
        "{payer} may set off any undisputed amount owed to it by {payee} under this Agreement against any amount "
        "payable by it to {payee} under this Agreement, on giving {payee} written notice of the set-off and the "
        "basis on which it is calculated.",
    ), commercial=True),
    Clause("Change Control", (
        "Either Party may request a change to the scope of this Agreement by written change request. {payee} shall, "
        "within ten (10) Business Days of receiving a change request from {payer}, provide a written assessment of "
        "its impact on the timetable, the Fees and any other term. No change is binding until a change note is "
        "signed by both Parties.",
    ), commercial=True),
    Clause("Cumulative Remedies", (
        "Except as expressly provided in this Agreement, the rights and remedies provided under this Agreement are in "
        "addition to, and not exclusive of, any rights or remedies provided by law.",
    )),
)  # fmt: skip

GOVERNING_LAW = Clause("Governing Law and Jurisdiction", (
    "This Agreement and any dispute or claim arising out of or in connection with it, including non-contractual "
    "disputes or claims, shall be governed by and construed in accordance with the laws of {law}, without regard to "
    "its conflict of laws principles.",
    "Subject to any agreement to arbitrate in this Agreement, each Party irrevocably submits to the exclusive "
    "jurisdiction of the courts located in {venue} over any claim or matter arising under or in connection with "
    "this Agreement.",
))  # fmt: skip

DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("Affiliate", "any entity that directly or indirectly controls, is controlled by, or is under common control with "
     "a Party, where control means ownership of more than fifty percent (50%) of the voting interests of the entity"),
    ("Agreement", "this agreement, including its Schedules, as amended from time to time in accordance with its terms"),
    ("Applicable Law", "all laws, statutes, regulations, by-laws and binding guidance of any governmental authority "
     "that apply to a Party or to the subject matter of this Agreement"),
    ("Background Intellectual Property", "Intellectual Property Rights owned by or licensed to a Party before the "
     "Effective Date or developed by it independently of this Agreement"),
    ("Business Day", "a day other than a Saturday, a Sunday or a public holiday in {venue}"),
    ("Change Note", "a written document signed by both Parties recording an agreed change to this Agreement"),
    ("Claim", "any demand, action, suit or proceeding brought by a third party"),
    ("Confidential Information", "all information of a confidential nature disclosed by or on behalf of a Party, in "
     "any form, that is marked as confidential or would reasonably be understood to be confidential"),
    ("Control", "the power to direct the management and policies of an entity, whether through ownership of voting "
     "securities, by contract or otherwise"),
    ("Data Protection Laws", "all Applicable Law relating to the processing of Personal Data and to privacy"),
    ("Deliverables", "all documents, products and materials developed by or on behalf of a Party in performing this "
     "Agreement, in any form"),
    ("Dispute", "any dispute, controversy or claim arising out of or in connection with this Agreement"),
    ("Documentation", "the user guides, specifications and technical manuals made available by a Party that describe "
     "the functions and use of its products or services"),
    ("Effective Date", "the date set out at the head of this Agreement"),
    ("Fees", "the amounts payable under this Agreement as set out in it and its Schedules"),
    ("Force Majeure Event", "an event or circumstance described in the Section headed Force Majeure"),
    ("Good Industry Practice", "the exercise of that degree of skill, care, prudence and foresight that would "
     "reasonably be expected from a skilled and experienced person engaged in the same type of undertaking"),
    ("Governmental Authority", "any national, state, provincial or local government, regulatory body, court or "
     "tribunal"),
    ("Insolvency Event", "in relation to a Party, its inability to pay its debts as they fall due, the appointment "
     "of a receiver, administrator or liquidator over it, or any analogous event in any jurisdiction"),
    ("Intellectual Property Rights", "patents, rights to inventions, copyright and related rights, trade marks, "
     "business names, domain names, rights in designs, database rights, rights in confidential information and all "
     "other intellectual property rights, whether registered or unregistered, anywhere in the world"),
    ("Losses", "all losses, liabilities, damages, costs, charges and expenses, including reasonable legal fees"),
    ("Personal Data", "any information relating to an identified or identifiable natural person"),
    ("Personnel", "the officers, employees, agents and subcontractors of a Party"),
    ("Records", "the books, accounts and other documents described in the Section headed Records"),
    ("Representatives", "in relation to a Party, its Affiliates and its and their directors, officers, employees, "
     "professional advisers and financing sources"),
    ("Schedule", "a schedule to this Agreement, which forms part of it"),
    ("Security Incident", "any actual or reasonably suspected unauthorised access to, or loss, disclosure or "
     "alteration of, Confidential Information or Personal Data"),
    ("Subcontractor", "any person engaged by a Party to perform any of its obligations under this Agreement"),
    ("Tax", "any tax, levy, duty, charge or withholding of any nature imposed by a Governmental Authority, together "
     "with any interest and penalties"),
    ("Term", "the period described in the Section headed Term, including any renewal"),
    ("Territory", "the countries in which a Party carries on business at the Effective Date"),
    ("Third-Party Materials", "any software, data or other materials owned by a person other than the Parties"),
    ("Working Hours", "the hours between 9:00 a.m. and 5:30 p.m. local time on a Business Day"),
    ("Virus", "any code designed to disrupt, damage or gain unauthorised access to any computer system, software or "
     "data, including worms, trojan horses, ransomware and time bombs"),
    ("Wilful Misconduct", "an intentional act or omission done in conscious disregard of its likely harmful "
     "consequences"),
)  # fmt: skip

# Schedules that any agreement for services, software or a business sale may carry (templates, like GENERAL).
COMMERCIAL_SCHEDULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Information Security Requirements", (
        "1. {payee} shall maintain an inventory of all systems that store or process {payer}'s data.",
        "2. Access to {payer}'s data shall be granted on a need-to-know basis and reviewed every quarter.",
        "3. Administrative accounts shall use multi-factor authentication and shall not be shared.",
        "4. Passwords shall be at least fourteen characters long and checked against lists of breached passwords.",
        "5. Laptops and removable media shall be encrypted with full-disk encryption.",
        "6. Production and test environments shall be logically separated, and test data shall not contain live "
        "personal data.",
        "7. Security patches shall be applied within the periods stated in the Section headed Information Security.",
        "8. Security logs shall be retained for at least one year and reviewed daily for anomalies.",
        "9. Backups shall be encrypted, stored in a separate location and restored in a test at least twice a year.",
        "10. An independent penetration test of internet-facing systems shall be performed at least annually.",
        "11. Personnel shall complete security awareness training on joining and every year afterwards.",
        "12. Physical access to data centres shall be controlled by badge and logged.",
        "13. Malware protection shall be installed on all end-user devices and servers and kept up to date.",
        "14. Suspected security incidents shall be reported to {payer}'s security contact within twenty-four hours.",
    )),
    ("Data Processing Terms", (
        "1. Subject matter: the processing of Personal Data by {payee} on behalf of {payer} to perform this "
        "Agreement.",
        "2. Duration: the term of this Agreement and any period of transition assistance after it ends.",
        "3. Categories of data subjects: {payer}'s employees, customers and the contact persons of its suppliers.",
        "4. Categories of Personal Data: names, business contact details, account identifiers, transaction records "
        "and support correspondence; no special categories of data unless agreed in writing.",
        "5. Sub-processors: {payee} may engage the sub-processors listed in its online register, and shall give "
        "{payer} thirty days' notice of any new sub-processor, during which {payer} may object on reasonable grounds.",
        "6. Assistance: {payee} shall assist {payer} in responding to requests from data subjects exercising their "
        "rights, and in carrying out data protection impact assessments where required.",
        "7. Deletion: at the end of the processing {payee} shall delete or return all Personal Data, as {payer} "
        "chooses, and delete existing copies unless the law requires their storage.",
        "8. Demonstrating compliance: {payee} shall make available the information necessary to demonstrate "
        "compliance with these terms and allow audits under the Section headed Audit Rights.",
        "9. Transfers: {payee} shall not transfer Personal Data outside the country in which it was collected except "
        "under a transfer mechanism recognised by Data Protection Laws.",
        "10. Breach notification: the notice periods in the Section headed Data Protection apply to any personal "
        "data breach affecting Personal Data processed under these terms.",
    )),
    ("Exit Plan", (
        "1. Within sixty days after the Effective Date {payee} shall deliver a draft exit plan for approval by "
        "{payer}.",
        "2. The exit plan shall list the assets, data, documentation and licences that will transfer on exit.",
        "3. It shall describe the knowledge transfer sessions that {payee} will hold with the replacement provider.",
        "4. It shall set out a timetable for the parallel running of old and new arrangements where needed.",
        "5. It shall identify the Personnel of {payee} who will remain available to answer questions after exit.",
        "6. The exit plan shall be reviewed and updated at least once in each contract year.",
        "7. The costs of carrying out the exit plan are payable at the rates in this Agreement unless the exit follows "
        "termination for {payee}'s breach, in which case they are borne by {payee}.",
    )),
    ("Insurance Requirements", (
        "Commercial general liability: not less than {insurance} per occurrence.",
        "Professional indemnity or errors and omissions: not less than {insurance} per claim.",
        "Cyber liability, including data breach response costs: not less than {insurance} in the aggregate.",
        "Employer's liability or workers' compensation: as required by the law of each place of work.",
        "Motor liability for any vehicle used in performing this Agreement: as required by law.",
        "Each policy shall be maintained with an insurer rated A- or better by a recognised rating agency.",
    )),
    ("Governance and Reporting", (
        "Weekly: operational call between the service leads to review open incidents and requests.",
        "Monthly: service review meeting of the account managers to review the monthly performance report.",
        "Quarterly: executive review of the relationship, the risk register and planned changes.",
        "Annually: review of the exit plan, the business continuity plan and the insurance certificates.",
        "Escalation: unresolved issues are escalated from the service leads to the account managers after five "
        "Business Days and to the executives after a further ten Business Days.",
        "Minutes of each governance meeting shall be circulated by {payee} within three Business Days.",
    )),
    ("Form of Change Note", (
        "Change Note number:",
        "Title of the change:",
        "Originator and date of the change request:",
        "Description of the change and the reason for it:",
        "Impact on the timetable and on any milestone dates:",
        "Impact on the Fees, with a breakdown of the calculation:",
        "Impact on the service levels and on any other term of this Agreement:",
        "Signed for and on behalf of {A}:",
        "Signed for and on behalf of {B}:",
    )),
)  # fmt: skip

# Terms that only make sense where one party supplies goods, software or services to the other.
COMMERCIAL_TERMS = frozenset({"Change Note", "Deliverables", "Documentation", "Fees", "Good Industry Practice",
                              "Records", "Subcontractor", "Third-Party Materials", "Working Hours"})  # fmt: skip

RECITALS: tuple[str, ...] = (
    "the Parties wish to set out in writing the terms on which they will deal with each other",
    "each Party has had the opportunity to obtain independent legal advice on the terms of this Agreement",
    "the Parties intend this Agreement to supersede their previous discussions on its subject matter",
)


# Assembly


@dataclass
class Doc:
    """One document before rendering: its facts are already in ``summary`` and in the fixed parts."""

    kind: str
    title: str
    opening: str  # heading block and preamble, before the recitals
    recitals: list[str]
    core: list[Clause]  # kind-specific clauses, always present, right after the definitions
    extra: list[Clause]  # kind-specific clauses, optional
    schedules: list[tuple[str, list[str]]]  # (title, lines), optional
    closing: str  # signature blocks
    summary: list[str]
    context: dict[str, str]
    commercial: bool = True
    general: bool = True  # whether the general clause bank applies (contracts, not policies or opinions)
    style: str = "numbered"
    extras_at: int | None = None  # where in ``core`` the chosen extras go; None: after all of it
    detail: int = 3  # the summary sentence with a secondary fact, which some summaries leave out


def contract_context(rng: random.Random, place: Jurisdiction, a: Party, b: Party, roles: Sequence[str],
                     payer: str, currency: str, cap: int) -> dict[str, str]:  # fmt: skip
    """The values the clause templates are filled with: drawn once per document, most only in the document."""
    insurance = rng.choice((1_000_000, 2_000_000, 5_000_000))
    return {
        "A": roles[0], "B": roles[1], "payer": payer, "payee": roles[0] if payer == roles[1] else roles[1],
        "law": place.law, "venue": rng.choice(place.cities),
        "notice_days": spelled(rng.choice((30, 45, 60, 90))), "cure_days": spelled(rng.choice((10, 15, 20, 30))),
        "fm_days": spelled(rng.choice((30, 60, 90))), "survival_years": spelled(rng.choice((2, 3, 5))),
        "records_years": spelled(rng.choice((3, 5, 6, 7))), "audit_days": spelled(rng.choice((10, 15, 30))),
        "payment_days": spelled(rng.choice((15, 30, 45, 60))), "late_rate": rng.choice(("one", "one and one-half")),
        "non_solicit_months": spelled(rng.choice((6, 12, 18, 24))),
        "escalation_days": spelled(rng.choice((20, 30, 45))),
        "arbitrators": rng.choice(("a sole arbitrator", "three arbitrators")),
        "cap": money(cap, currency), "insurance": money(insurance, currency),
        "email_a": a.email, "email_b": b.email,
    }  # fmt: skip


def render(doc: Doc, rng: random.Random, target: int) -> str:
    """The document text: opening, recitals, numbered clauses, signatures and schedules, about ``target`` long."""
    ctx = doc.context
    general = [c for c in GENERAL if doc.general and (doc.commercial or not c.commercial)]
    schedules = doc.schedules + ([(t, list(lines)) for t, lines in COMMERCIAL_SCHEDULES] if doc.commercial else [])
    optional: list[tuple[str, int]] = [("extra", i) for i in range(len(doc.extra))]
    optional += [("general", i) for i in range(len(general))]
    optional += [("schedule", i) for i in range(len(schedules))]
    rng.shuffle(optional)
    chosen: set[tuple[str, int]] = set()
    definitions: list[tuple[str, str]] = []

    def text() -> str:
        extras = [c for i, c in enumerate(doc.extra) if ("extra", i) in chosen]
        at = len(doc.core) if doc.extras_at is None else doc.extras_at
        body = [*doc.core[:at], *extras, *doc.core[at:]]
        body += [c for i, c in enumerate(general) if ("general", i) in chosen]
        body += [GOVERNING_LAW] if doc.general else []
        if definitions:
            body.insert(0, Clause("Definitions", tuple(f'"{t}" means {d}.' for t, d in definitions)))
        return assemble(doc, body, [s for i, s in enumerate(schedules) if ("schedule", i) in chosen])

    for item in optional:
        if len(text()) >= target:
            break
        chosen.add(item)
    if doc.general and len(text()) > 8_000:  # longer agreements open with definitions, about one per 1,000 chars
        pool = [d for d in DEFINITIONS if doc.commercial or d[0] not in COMMERCIAL_TERMS]
        definitions[:] = sorted(rng.sample(pool, k=min(len(pool), (len(text()) - 4_000) // 1_000)))
    return text().format_map(ctx)


def assemble(doc: Doc, body: list[Clause], schedules: list[tuple[str, list[str]]]) -> str:
    parts = [doc.opening.rstrip() + "\n\n"]
    if doc.recitals:
        parts.append("RECITALS\n\n")
        parts += [f"WHEREAS, {recital};\n\n" for recital in doc.recitals]
        parts.append("NOW, THEREFORE, in consideration of the mutual covenants set out below, and for other good and "
                     "valuable consideration, the receipt and sufficiency of which are acknowledged, the Parties "
                     "agree as follows:\n\n")  # fmt: skip
    for number, clause in enumerate(body, start=1):
        parts.append(render_clause(number, clause, doc.style))
    parts.append(doc.closing.rstrip() + "\n")
    for index, (title, lines) in enumerate(schedules):
        parts.append(f"\nSCHEDULE {chr(65 + index)}\n{title.upper()}\n\n" + "\n".join(lines) + "\n")
    return "".join(parts)


def roman(n: int) -> str:
    out = ""
    for value, letters in ((100, "C"), (90, "XC"), (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV")):
        while n >= value:
            out, n = out + letters, n - value
    return out + "I" * n


def letter(index: int) -> str:
    """(a) ... (z), then (aa), (bb) ...: how long lists of sub-clauses are lettered."""
    return chr(97 + index % 26) * (index // 26 + 1)


def render_clause(number: int, clause: Clause, style: str) -> str:
    heading, paragraphs = clause.heading, clause.paragraphs
    if style == "opinion":
        return f"{roman(number)}. {heading.upper()}\n\n" + "".join(f"{p}\n\n" for p in paragraphs)
    if style == "article":
        lines = [f"ARTICLE {roman(number)}\n{heading.upper()}\n"]
        lines += [f"Section {number}.{i}. {p}\n" for i, p in enumerate(paragraphs, start=1)]
    elif style == "section":
        lines = [f"Section {number}. {heading}. {'(a) ' if len(paragraphs) > 1 else ''}{paragraphs[0]}\n"]
        lines += [f"({letter(i)}) {p}\n" for i, p in enumerate(paragraphs[1:], start=1)]
    elif len(paragraphs) == 1:
        lines = [f"{number}. {heading}. {paragraphs[0]}\n"]
    else:
        lines = [f"{number}. {heading.upper()}\n"]
        lines += [f"{number}.{i} {p}\n" for i, p in enumerate(paragraphs, start=1)]
    return "\n".join(lines) + "\n"


def preamble(title: str, date: dt.date, a: Party, b: Party, roles: Sequence[str]) -> str:
    return (
        f"{title.upper()}\n\n"
        f'This {title} (this "Agreement") is entered into as of {day(date)} (the "Effective Date") by and between '
        f'{a.name}, {a.description} with its principal place of business at {a.address} ("{roles[0]}"), and '
        f'{b.name}, {b.description} with its principal place of business at {b.address} ("{roles[1]}"). '
        f'{roles[0]} and {roles[1]} are each a "Party" and together the "Parties".'
    ).replace("an individual with its principal place of business at", "an individual residing at")


def signatures(a: Party, b: Party, roles: Sequence[str], date: dt.date) -> str:
    blocks = []
    for party, role in ((a, roles[0]), (b, roles[1])):
        if party.description == "an individual":
            blocks.append(f"{role.upper()}\n\n______________________________\n{party.name}\nDate: {day(date)}")
        else:
            blocks.append(
                f"{party.name.upper()}\n\nBy: ______________________________\nName: {party.signatory}\n"
                f"Title: {party.signatory_title}\nDate: {day(date)}"
            )
    return (
        "IN WITNESS WHEREOF, the Parties have caused this Agreement to be executed by their duly authorised "
        "representatives as of the Effective Date.\n\n" + "\n\n".join(blocks) + "\n"
    )


# Kinds. Each returns a Doc whose summary sentences use only values that also appear in its text.

KindBuilder = Callable[[random.Random, Names], Doc]


def pick(rng: random.Random, *variants: str) -> str:
    return rng.choice(variants)


def nda(rng: random.Random, names: Names) -> Doc:
    place = rng.choice(JURISDICTIONS)
    a, b = names.company(place), names.company(rng.choice(JURISDICTIONS))
    date = dt.date(rng.randint(2019, 2025), rng.randint(1, 12), rng.randint(1, 28))
    purpose = rng.choice((
        "a potential joint development of cold-chain monitoring sensors",
        "a possible acquisition of a minority interest in one Party by the other",
        "a proposed distribution arrangement for consumer electronics in North America",
        "a joint bid for a municipal transit data contract",
        "a potential licence of a drug-formulation patent portfolio",
        "an evaluation of a supply agreement for recycled packaging materials",
    ))  # fmt: skip
    years, term = rng.choice((2, 3, 5)), rng.choice((1, 2, 3))
    mutual = rng.random() < 0.6
    title = "Mutual Non-Disclosure Agreement" if mutual else "Non-Disclosure Agreement"
    roles = (a.short, b.short) if mutual else ("Discloser", "Recipient")
    ctx = contract_context(rng, place, a, b, roles, roles[1], place.currency, 100_000)
    core = [
        Clause("Purpose", (
            f"The Parties wish to exchange Confidential Information solely to evaluate {purpose} (the \"Purpose\"). "
            "No Party is obliged to proceed with any transaction, and either Party may end discussions at any time.",
        )),
        Clause("Obligations of the Recipient", (
            f"{'Each Party, as recipient,' if mutual else 'Recipient'} shall use Confidential Information only for the "
            "Purpose, shall not disclose it except to Representatives who need to know it for the Purpose, and shall "
            f"keep it confidential for {spelled(years)} years after the date of its disclosure.",
        )),
        Clause("Term", (
            f"This Agreement begins on the Effective Date and continues for {spelled(term)} year{'s' * (term > 1)}, "
            "unless terminated earlier by either Party on thirty (30) days' written notice. Termination does not end "
            "the obligations in respect of Confidential Information disclosed before termination.",
        )),
        Clause("No Licence", (
            "All Confidential Information remains the property of the disclosing Party. No licence under any patent, "
            "copyright, trade secret or other right is granted by this Agreement, except the limited right to use "
            "Confidential Information for the Purpose.",
        )),
    ]  # fmt: skip
    who = f"{a.name} and {b.name}"
    summary = [
        pick(rng, f"{who} entered into a {title.lower()} dated {day(date)}.",
             f"This {title.lower()} between {who} is dated {day(date)}."),
        f"It governs Confidential Information exchanged to evaluate {purpose}."
        if mutual else f"{a.name} discloses Confidential Information to {b.name} to evaluate {purpose}.",
        pick(rng, f"Confidential Information must be kept confidential for {years} years after it is disclosed.",
             f"The duty of confidentiality lasts {years} years from each disclosure."),
        f"The agreement runs for {term} year{'s' * (term > 1)} and either party may end it on 30 days' written notice.",
        pick(rng, f"It is governed by the laws of {place.law}.", f"The laws of {place.law} govern the agreement."),
    ]  # fmt: skip
    return Doc(
        "nda", title, preamble(title, date, a, b, roles), rng.sample(RECITALS, 1) + [
            f"the Parties wish to exchange certain Confidential Information in connection with {purpose}"],
        core, [], [], signatures(a, b, roles, date), summary, ctx, commercial=False,
        style=rng.choice(("numbered", "section")),
    )  # fmt: skip


def lease(rng: random.Random, names: Names) -> Doc:
    place = rng.choice(JURISDICTIONS)
    a = names.individual(place) if rng.random() < 0.2 else names.company(place)
    b = names.company(place)
    roles, cur = ("Landlord", "Tenant"), place.currency
    start = dt.date(rng.randint(2019, 2025), rng.randint(1, 12), 1)
    months = rng.choice((12, 24, 36, 60, 84, 120))
    end = term_end(start, months)
    rent = rng.randrange(1_800, 48_000, 50)
    deposit = rent * rng.choice((2, 3))
    area = rng.randrange(900, 42_000, 50)
    escalation = rng.choice((2, 3, 4))
    premises = address(rng, place)
    use = rng.choice(("general office use", "a retail bakery and cafe", "light manufacturing and warehousing",
                      "a dental clinic", "a software development studio", "a fitness studio"))  # fmt: skip
    ctx = contract_context(rng, place, a, b, roles, "Tenant", cur, deposit * 4)
    core = [
        Clause("Premises", (
            f"Landlord leases to Tenant, and Tenant leases from Landlord, the premises located at {premises}, "
            f"comprising approximately {area:,} rentable square feet (the \"Premises\"), together with the right "
            "to use the common areas of the building in common with other tenants.",
        )),
        Clause("Term", (
            f"The term of this lease is {months} months, commencing on {day(start)} (the \"Commencement Date\") "
            f"and ending on {day(end)}, unless terminated earlier in accordance with this Agreement.",
        )),
        Clause("Rent", (
            f"Tenant shall pay Landlord base rent of {money(rent, cur)} per month, in advance, on the first day of "
            "each calendar month without demand, deduction or set-off. Rent for any partial month shall be prorated "
            "on a daily basis.",
            f"On each anniversary of the Commencement Date the monthly base rent shall increase by {escalation} "
            "percent over the base rent payable in the preceding month.",
        )),
        Clause("Security Deposit", (
            f"On signing this Agreement Tenant shall deposit {money(deposit, cur)} with Landlord as security for the "
            "performance of its obligations. Landlord may apply the deposit to cure any default of Tenant, and shall "
            "return any unapplied balance within thirty (30) days after the end of the term.",
        )),
        Clause("Use", (
            f"Tenant shall use the Premises only for {use} and for no other purpose without Landlord's prior written "
            "consent. Tenant shall not use the Premises in any manner that creates a nuisance or violates any law or "
            "the rules of the building.",
        )),
    ]  # fmt: skip
    extra = [
        Clause("Operating Expenses", (
            f"In addition to base rent, Tenant shall pay its proportionate share, being {rng.randint(3, 40)} percent, "
            "of the operating expenses of the building, including cleaning of common areas, security, landscaping, "
            "insurance premiums and real estate taxes, in monthly instalments based on Landlord's annual estimate.",
            "Within one hundred twenty (120) days after the end of each calendar year Landlord shall deliver a "
            "statement of actual operating expenses, and the Parties shall settle any overpayment or underpayment "
            "within thirty (30) days of delivery of that statement.",
        )),
        Clause("Utilities", (
            "Tenant shall arrange and pay for all electricity, gas, water, telecommunications and other utilities "
            "consumed at the Premises. Landlord is not liable for any interruption of utility services not caused by "
            "its negligence.",
        )),
        Clause("Maintenance and Repairs", (
            "Landlord shall maintain in good repair the roof, foundations, structural walls and the base building "
            "systems serving the Premises. Tenant shall keep the interior of the Premises, including doors, windows, "
            "fixtures and floor coverings, in good and clean condition, reasonable wear and tear excepted.",
        )),
        Clause("Alterations", (
            "Tenant shall not make any alterations, additions or improvements to the Premises costing more than "
            f"{money(rent * 2, cur)} in the aggregate without the prior written consent of Landlord. All approved work "
            "shall be performed by licensed contractors in a good and workmanlike manner and in compliance with law.",
        )),
        Clause("Landlord's Access", (
            "Landlord may enter the Premises on at least twenty-four (24) hours' notice, or at any time in an "
            "emergency, to inspect them, make repairs or show them to prospective purchasers, lenders or, during the "
            "last six months of the term, prospective tenants.",
        )),
        Clause("Assignment and Subletting", (
            "Tenant shall not assign this lease or sublet all or any part of the Premises without Landlord's prior "
            "written consent, which Landlord shall not unreasonably withhold. Any assignment or sublease does not "
            "release Tenant from its obligations under this Agreement.",
        )),
        Clause("Insurance of the Premises", (
            "Tenant shall maintain commercial general liability insurance with a limit of not less than "
            f"{ctx['insurance']} per occurrence naming Landlord as additional insured, and property insurance "
            "covering its trade fixtures, equipment and inventory for their full replacement cost.",
        )),
        Clause("Damage and Destruction", (
            "If the Premises are damaged by fire or other casualty so that they cannot be used, rent shall abate in "
            "proportion to the area that cannot be used until Landlord restores them. If restoration cannot "
            "reasonably be completed within one hundred eighty (180) days, either Party may terminate this lease by "
            "written notice.",
        )),
        Clause("Condemnation", (
            "If all or a material part of the Premises is taken by eminent domain or sold under threat of taking, "
            "this lease ends on the date of the taking and rent shall be apportioned to that date. Any award for the "
            "taking belongs to Landlord, except for any award for Tenant's moving expenses and trade fixtures.",
        )),
        Clause("Default by Tenant", (
            "Each of the following is an event of default: Tenant fails to pay rent within five (5) days after it is "
            "due; Tenant fails to perform any other obligation within thirty (30) days after written notice; or "
            "Tenant abandons the Premises. On an event of default Landlord may terminate this lease, re-enter the "
            "Premises and recover the rent and damages permitted by law.",
        )),
        Clause("Holding Over", (
            "If Tenant remains in possession after the end of the term without a new written agreement, it shall be "
            "a tenant at will and shall pay monthly rent equal to one hundred fifty percent (150%) of the last "
            "monthly base rent, together with any damages Landlord suffers as a result.",
        )),
        Clause("Surrender", (
            "At the end of the term Tenant shall surrender the Premises broom clean and in good condition, "
            "reasonable wear and tear and casualty excepted, and shall remove its trade fixtures and repair any "
            "damage caused by their removal.",
        )),
        Clause("Quiet Enjoyment", (
            "As long as Tenant pays the rent and performs its obligations, Tenant may peaceably and quietly enjoy the "
            "Premises during the term without interference by Landlord or anyone claiming through Landlord.",
        )),
        Clause("Subordination and Estoppel", (
            "This lease is subordinate to any mortgage now or later placed on the building, provided that the holder "
            "agrees not to disturb Tenant's possession while Tenant is not in default. Within ten (10) days of "
            "request Tenant shall deliver a certificate stating whether this lease is in full force and whether any "
            "defaults exist.",
        )),
        Clause("Parking", (
            f"Landlord shall make available to Tenant {spelled(rng.randint(2, 40))} unreserved parking spaces in the "
            "building car park at the prevailing monthly rate charged to other tenants of the building.",
        )),
        Clause("Signage", (
            "Tenant may install its name on the building directory and at the entrance to the Premises, in a form "
            "approved by Landlord and in compliance with local signage ordinances, at Tenant's cost.",
        )),
        Clause("Hazardous Materials", (
            "Tenant shall not bring onto the Premises any hazardous substance other than customary office and "
            "cleaning supplies used in compliance with environmental laws, and shall indemnify Landlord against any "
            "contamination caused by Tenant or its invitees.",
        )),
        Clause("Brokers", (
            "Each Party represents that it has dealt with no broker in connection with this lease other than brokers "
            "whose commissions Landlord shall pay under a separate agreement, and each Party shall indemnify the "
            "other against claims by any other broker claiming through it.",
        )),
    ]  # fmt: skip
    schedules = [
        ("Base Rent Schedule", [f"Lease year {year + 1}: {money(round(rent * (1 + escalation / 100) ** year), cur)} "
                                "per month" for year in range(max(1, months // 12))]),
        ("Rules and Regulations", [f"{i}. {rule}" for i, rule in enumerate((
            "Sidewalks, entrances, corridors and stairways shall not be obstructed.",
            "No animals other than assistance animals shall be brought into the building.",
            "Deliveries of bulky items shall be made only through the service entrance.",
            "Tenant shall not install window coverings other than those approved by Landlord.",
            "Smoking is prohibited in all enclosed areas of the building.",
            "Bicycles shall be stored only in the designated storage room.",
            "Tenant shall report any water leak or fire hazard to the building manager immediately.",
            "No cooking other than in approved kitchenettes using microwave ovens and coffee machines.",
            "Doors to the Premises shall be locked when the Premises are unattended.",
            "Waste shall be sorted into the recycling streams designated by the building manager.",
        ), start=1)]),
        ("Description of Landlord's Work", [
            "Landlord shall deliver the Premises with new carpet tiles throughout the open-plan area.",
            "Landlord shall repaint all interior walls in a neutral colour selected by Tenant.",
            "Landlord shall install two accessible restrooms compliant with current building codes.",
            "Landlord shall upgrade the lighting to LED fixtures with occupancy sensors.",
            "Landlord shall deliver the heating, ventilation and air conditioning system in good working order.",
        ]),
    ]  # fmt: skip
    who = f"{a.name} (landlord) and {b.name} (tenant)"
    summary = [
        pick(rng, f"This lease between {who} is dated {day(start)}.",
             f"{b.name} leases premises at {premises} from {a.name}."),
        f"The premises at {premises} cover about {area:,} square feet and may be used only for {use}.",
        f"The term is {months} months, from {day(start)} to {day(end)}.",
        f"Base rent is {money(rent, cur)} per month, rising by {escalation} percent each year, and the tenant "
        f"must pay a security deposit of {money(deposit, cur)} on signing.",
        pick(rng, f"The lease is governed by the laws of {place.law}.", f"The laws of {place.law} govern the lease."),
    ]  # fmt: skip
    if summary[0].startswith(b.name):
        summary[1] = f"The premises cover about {area:,} square feet and may be used only for {use}."
    return Doc("lease", "Commercial Lease Agreement", preamble("Commercial Lease Agreement", start, a, b, roles),
               [*rng.sample(RECITALS, 1), f"Landlord owns the building in which the premises at {premises} lie"],
               core, extra, schedules, signatures(a, b, roles, start), summary, ctx, commercial=False,
               style=rng.choice(("numbered", "article", "section")), detail=1)  # fmt: skip


POSITIONS = ("Senior Data Engineer", "Head of Customer Support", "Regional Sales Manager", "Staff Accountant",
             "Product Designer", "Warehouse Operations Lead", "Clinical Research Coordinator",
             "Chief Technology Officer", "Marketing Director", "Quality Assurance Analyst")  # fmt: skip


def employment(rng: random.Random, names: Names) -> Doc:
    place = rng.choice(JURISDICTIONS)
    a, b = names.company(place), names.individual(place)
    roles, cur = ("Employer", "Employee"), place.currency
    start = dt.date(rng.randint(2019, 2025), rng.randint(1, 12), rng.randint(1, 28))
    position = rng.choice(POSITIONS)
    salary = rng.randrange(48_000, 260_000, 500)
    bonus, leave = rng.choice((5, 10, 15, 20, 25)), rng.choice((15, 20, 25, 28))
    probation, notice, noncompete = rng.choice((3, 6)), rng.choice((2, 4, 8, 12)), rng.choice((6, 12, 18))
    city = rng.choice(place.cities)
    ctx = contract_context(rng, place, a, b, roles, "Employer", cur, salary)
    core = [
        Clause("Position and Duties", (
            f"Employer employs Employee as {position}, reporting to the {rng.choice(TITLES)}. Employee shall perform "
            "the duties reasonably assigned to that position and shall devote substantially all of Employee's "
            "working time and attention to the business of Employer.",
            f"Employee's normal place of work is Employer's office in {city}, and Employee may be required to travel "
            "in the course of employment.",
        )),
        Clause("Commencement and Probation", (
            f"Employment begins on {day(start)}. The first {spelled(probation)} months are a probationary period "
            "during which either Party may end the employment on one (1) week's written notice.",
        )),
        Clause("Compensation", (
            f"Employer shall pay Employee a base salary of {money(salary, cur)} per year, less applicable "
            "withholdings, in accordance with Employer's regular payroll schedule. The base salary shall be reviewed "
            "annually but is not required to increase.",
            f"Employee is eligible for an annual discretionary bonus with a target of {bonus} percent of base salary, "
            "based on the achievement of individual and company objectives set by Employer.",
        )),
        Clause("Leave and Benefits", (
            f"Employee is entitled to {spelled(leave)} days of paid vacation in each calendar year in addition to "
            "public holidays, and may participate in Employer's health, retirement and other benefit plans on the "
            "terms of those plans as in effect from time to time.",
        )),
        Clause("Termination of Employment", (
            f"After the probationary period either Party may terminate the employment by giving {spelled(notice)} "
            "weeks' written notice. Employer may pay base salary in lieu of all or part of the notice period, and may "
            "terminate the employment immediately for cause, including serious misconduct or a material breach of "
            "this Agreement.",
        )),
        Clause("Restrictive Covenants", (
            f"For {spelled(noncompete)} months after the end of employment, Employee shall not, within the "
            "geographic markets in which Employer did business during the last year of employment, provide services "
            "to a competing business in a role similar to the one Employee held with Employer, nor solicit any "
            "customer with whom Employee dealt in that year.",
        )),
    ]  # fmt: skip
    extra = [
        Clause("Hours of Work", (
            "Employee's normal working hours are forty (40) hours a week, and Employee may be required to work "
            "additional hours as the needs of the business reasonably require, subject to applicable law.",
        )),
        Clause("Expenses", (
            "Employer shall reimburse Employee for reasonable business expenses properly incurred in performing "
            "Employee's duties, on production of receipts and in accordance with Employer's expense policy.",
        )),
        Clause("Inventions and Work Product", (
            "All inventions, works of authorship, designs and other work product that Employee creates in the course "
            "of employment belong to Employer. Employee hereby assigns to Employer all rights in them and shall sign "
            "any document reasonably required to perfect that assignment.",
        )),
        Clause("Outside Activities", (
            "Employee shall not, without Employer's prior written consent, be engaged in any other business or "
            "employment that conflicts with Employee's duties, except for passive investments of not more than five "
            "percent (5%) of the shares of a listed company.",
        )),
        Clause("Return of Property", (
            "On the end of employment, or earlier on request, Employee shall return all property of Employer, "
            "including laptops, access cards, documents and data, and shall not keep any copy of Employer's "
            "Confidential Information.",
        )),
        Clause("Policies", (
            "Employee shall comply with Employer's policies as issued from time to time, including those on "
            "information security, anti-harassment, health and safety and the acceptable use of company systems. "
            "Those policies do not form part of this contract and may be changed by Employer.",
        )),
        Clause("Grievance and Discipline", (
            "Any grievance relating to Employee's employment shall be raised in writing with Employee's manager, and "
            "disciplinary matters shall be handled in accordance with Employer's disciplinary procedure, which is "
            "available from the human resources department.",
        )),
        Clause("Background Checks", (
            "This offer of employment is conditional on the satisfactory completion of reference and background "
            "checks permitted by applicable law and on Employee's proof of the right to work in the jurisdiction of "
            "employment.",
        )),
    ]  # fmt: skip
    summary = [
        pick(rng, f"{a.name} employs {b.name} as {position} starting {day(start)}.",
             f"Under this employment agreement, {b.name} joins {a.name} as {position} on {day(start)}."),
        f"The base salary is {money(salary, cur)} per year, with a target bonus of {bonus} percent of base salary.",
        f"The first {probation} months are probationary, after which either party may end the employment on "
        f"{notice} weeks' written notice.",
        f"The employee is entitled to {leave} days of paid vacation a year and accepts a {noncompete}-month "
        "restriction on competing work and soliciting customers after leaving.",
        pick(rng, f"The agreement is governed by the laws of {place.law}.",
             f"The laws of {place.law} govern the agreement."),
    ]  # fmt: skip
    return Doc("employment", "Employment Agreement", preamble("Employment Agreement", start, a, b, roles),
               [f"Employer wishes to employ Employee as {position}, and Employee wishes to accept that employment"],
               core, extra, [], signatures(a, b, roles, start), summary, ctx, commercial=False,
               style=rng.choice(("numbered", "section")))  # fmt: skip


PRODUCTS = ("Ledger Suite", "Fleet Tracker", "Claims Desk", "Inventory Cloud", "Lab Notebook", "Route Planner",
            "Payroll Engine", "Booking Hub", "Asset Monitor", "Contract Vault")  # fmt: skip
MODULES = ("Core Platform", "Reporting and Dashboards", "Mobile Client", "Single Sign-On Connector",
           "Audit Trail", "Workflow Designer", "Data Export API", "Forecasting Add-On", "Document Capture",
           "Multi-Currency Pack", "Notification Service", "Sandbox Environment")  # fmt: skip


def payment_schedule(rng: random.Random, total: int, start: dt.date, cur: str, what: str) -> list[str]:
    count = rng.choice((4, 6, 8, 12))
    base = total // count
    rows = []
    for i in range(count):
        amount = base if i < count - 1 else total - base * (count - 1)
        rows.append(f"Instalment {i + 1} of {what}: {money(amount, cur)}, due on {day(add_months(start, i * 3))}.")
    return rows


def software_licence(rng: random.Random, names: Names) -> Doc:
    place = rng.choice(JURISDICTIONS)
    a, b = names.company(place), names.company(rng.choice(JURISDICTIONS))
    roles, cur = ("Licensor", "Licensee"), place.currency
    date = dt.date(rng.randint(2019, 2025), rng.randint(1, 12), rng.randint(1, 28))
    product = f"{a.short} {rng.choice(PRODUCTS)}"
    fee, users, months = rng.randrange(24_000, 2_400_000, 1_000), rng.choice((25, 50, 100, 250, 500, 1_000)), 0
    perpetual = rng.random() < 0.35
    if not perpetual:
        months = rng.choice((12, 24, 36, 60))
    support = rng.choice((15, 18, 20, 22))
    warranty = rng.choice((60, 90))
    ctx = contract_context(rng, place, a, b, roles, "Licensee", cur, fee)
    duration = "perpetual" if perpetual else f"{spelled(months)}-month"
    core = [
        Clause("Grant of Licence", (
            f"Subject to the terms of this Agreement and payment of the Fees, Licensor grants Licensee a "
            f"non-exclusive, non-transferable, {duration} licence to install and use {product} (the \"Software\") "
            f"for its internal business purposes by up to {users:,} named users.",
        )),
        Clause("Restrictions", (
            "Licensee shall not, and shall not permit any person to, copy the Software except for reasonable backup "
            "purposes, modify, translate or create derivative works of it, reverse engineer, decompile or "
            "disassemble it except to the extent permitted by law, or sublicense, rent or lease it to any third party.",
        )),
        Clause("Licence Fee", (
            f"Licensee shall pay Licensor a licence fee of {money(fee, cur)} in the instalments set out in the "
            "payment schedule or, if none is attached, within thirty (30) days of the Effective Date.",
        )),
        Clause("Support and Maintenance", (
            f"For an annual fee equal to {support} percent of the licence fee, Licensor shall provide updates, "
            "patches and technical support by telephone and e-mail during Working Hours, responding to critical "
            "incidents within four (4) hours.",
        )),
        Clause("Software Warranty", (
            f"Licensor warrants that for {spelled(warranty)} days after delivery the Software will perform "
            "materially in accordance with its Documentation. Licensee's sole remedy for breach of this warranty is "
            "the correction of the non-conformity or, if Licensor cannot correct it, a refund of the licence fee "
            "paid for the non-conforming Software.",
        )),
        Clause("Term", (
            "This Agreement begins on the Effective Date and the licence continues in perpetuity unless terminated "
            "for cause." if perpetual else
            f"This Agreement begins on the Effective Date and continues for {spelled(months)} months, after which "
            "it renews for successive one-year periods unless either Party gives notice of non-renewal.",
        )),
    ]  # fmt: skip
    extra = [
        Clause("Delivery and Installation", (
            "Licensor shall make the Software available for download within five (5) Business Days after the "
            "Effective Date and shall provide reasonable remote assistance with its installation on Licensee's "
            "systems meeting the minimum requirements set out in the Documentation.",
        )),
        Clause("Acceptance Testing", (
            "Licensee may test the Software for thirty (30) days after installation against the acceptance criteria "
            "agreed in writing. If the Software fails a test, Licensor shall correct the failure and resubmit it; "
            "after two failed retests Licensee may reject the Software and receive a refund of all Fees paid.",
        )),
        Clause("Infringement Indemnity", (
            "Licensor shall defend Licensee against any claim that the Software infringes a patent, copyright or "
            "trade mark, or misappropriates a trade secret, of a third party, and shall pay any damages finally "
            "awarded. If such a claim is made, Licensor may procure the right for Licensee to continue using the "
            "Software, modify it to be non-infringing, or terminate the licence and refund the unamortised fee.",
        )),
        Clause("Open Source Components", (
            "The Software may include open source components identified in the Documentation, which are licensed "
            "under their own licences. Licensor warrants that no such component is used in a manner that would "
            "require Licensee to disclose or license its own source code.",
        )),
        Clause("Source Code Escrow", (
            "Licensor shall deposit the source code of the Software with an independent escrow agent and update the "
            "deposit with each major release. The source code shall be released to Licensee if Licensor ceases to "
            "carry on business or fails to provide support in breach of this Agreement for sixty (60) days.",
        )),
        Clause("Verification of Use", (
            "Once in each calendar year Licensee shall, on request, certify in writing the number of named users of "
            "the Software. If the number exceeds the licensed number, Licensee shall pay the additional licence fees "
            "at Licensor's then-current list prices.",
        )),
        Clause("Updates and Upgrades", (
            "While Licensee pays for support, Licensor shall make available all updates and upgrades it makes "
            "generally available to its customers. Licensor shall support the current release and the immediately "
            "preceding release of the Software.",
        )),
        Clause("Training", (
            "Licensor shall provide up to three (3) days of remote training for Licensee's administrators at no "
            "additional charge, and further training at the daily rates in its price list in effect at the time.",
        )),
        Clause("Third-Party Software", (
            "Where the Software requires third-party database or operating system software, Licensee is responsible "
            "for obtaining licences for that software, and Licensor gives no warranty in respect of it.",
        )),
    ]  # fmt: skip
    schedules = [
        ("Licensed Modules", [f"{i}. {product} {module}" for i, module in
                              enumerate(rng.sample(MODULES, k=rng.randint(6, len(MODULES))), start=1)]),
        ("Payment Schedule", payment_schedule(rng, fee, date, cur, "the licence fee")),
        ("Support Service Levels", [
            "Priority 1 (system unavailable): response within 4 hours, workaround within 1 Business Day.",
            "Priority 2 (major function impaired): response within 8 hours, workaround within 3 Business Days.",
            "Priority 3 (minor function impaired): response within 2 Business Days, fix in the next update.",
            "Priority 4 (question or cosmetic issue): response within 5 Business Days.",
            "Monthly reports shall show the number of incidents by priority and the time taken to resolve them.",
        ]),
        ("Minimum System Requirements", [
            "Server: 8 processor cores, 32 GB of memory, 500 GB of solid-state storage.",
            "Database: a supported relational database server in a version still receiving security updates.",
            "Client: a current version of a major web browser with JavaScript enabled.",
            "Network: a dedicated connection of at least 100 megabits per second between users and the server.",
        ]),
    ]  # fmt: skip
    licence_words = "a perpetual licence" if perpetual else f"a {months}-month licence"
    summary = [
        pick(rng, f"{a.name} licenses {product} to {b.name} under a software license agreement dated {day(date)}.",
             f"Under this agreement dated {day(date)}, {a.name} grants {b.name} {licence_words} to {product}."),
        f"The licence is non-exclusive and {'perpetual' if perpetual else f'runs for {months} months'}, for up to "
        f"{users:,} named users.",
        f"The licence fee is {money(fee, cur)}, and annual support costs {support} percent of that fee.",
        f"The software is warranted to conform to its documentation for {warranty} days after delivery.",
        pick(rng, f"The agreement is governed by the laws of {place.law}.",
             f"The laws of {place.law} govern the agreement."),
    ]  # fmt: skip
    return Doc("software_licence", "Software License Agreement",
               preamble("Software License Agreement", date, a, b, roles),
               [f"Licensor has developed and owns the software known as {product}",
                "Licensee wishes to obtain a licence to use that software on the terms of this Agreement"],
               core, extra, schedules, signatures(a, b, roles, date), summary, ctx,
               style=rng.choice(("numbered", "article")))  # fmt: skip


SERVICES = ("managed cloud hosting and monitoring", "payroll processing and benefits administration",
            "customer-support outsourcing for a consumer electronics brand", "clinical trial data management",
            "digital marketing and search-engine advertising", "warehouse management and order fulfilment",
            "cybersecurity monitoring and incident response",
            "translation and localisation of product manuals")  # fmt: skip
ROLES_RATES = ("Engagement Partner", "Project Manager", "Senior Consultant", "Consultant", "Analyst",
               "Solution Architect", "Data Engineer", "Quality Lead", "Support Specialist", "Trainer")  # fmt: skip


def services(rng: random.Random, names: Names) -> Doc:
    place = rng.choice(JURISDICTIONS)
    a, b = names.company(place), names.company(rng.choice(JURISDICTIONS))
    roles, cur = ("Provider", "Client"), place.currency
    start = dt.date(rng.randint(2019, 2025), rng.randint(1, 12), rng.randint(1, 28))
    months = rng.choice((6, 12, 18, 24, 36))
    fee = rng.randrange(4_000, 180_000, 500)
    service = rng.choice(SERVICES)
    manager = person(rng)
    credit = rng.choice((5, 10))
    ctx = contract_context(rng, place, a, b, roles, "Client", cur, fee * 12)
    core = [
        Clause("Services", (
            f"Provider shall provide {service} (the \"Services\") to Client as described in this Agreement and in "
            "each statement of work signed by both Parties, with the skill and care of Good Industry Practice.",
        )),
        Clause("Term", (
            f"This Agreement begins on {day(start)} and continues for {spelled(months)} months, unless terminated "
            "earlier in accordance with its terms. The Parties may extend it by a signed Change Note.",
        )),
        Clause("Fees", (
            f"Client shall pay Provider a monthly fee of {money(fee, cur)} for the Services, invoiced monthly in "
            "arrears. Work outside the scope of the Services shall be charged at the rates in the rate card.",
        )),
        Clause("Key Personnel", (
            f"Provider appoints {manager} as its account manager, who shall be responsible for the day-to-day "
            "delivery of the Services. Provider shall not replace its account manager without giving Client thirty "
            "(30) days' notice, except in the case of illness, resignation or dismissal.",
        )),
        Clause("Service Levels and Credits", (
            "Provider shall meet the service levels in the service level schedule. If it fails to meet a service "
            f"level in any month, Client is entitled to a service credit of {credit} percent of the monthly fee for "
            "that month, which is Client's sole financial remedy for that failure.",
        )),
    ]  # fmt: skip
    extra = [
        Clause("Statements of Work", (
            "Each statement of work shall describe the deliverables, milestones, acceptance criteria, assumptions and "
            "any additional fees for the project it covers. A statement of work is binding only when signed by both "
            "Parties and forms part of this Agreement.",
        )),
        Clause("Expenses", (
            "Client shall reimburse reasonable travel and subsistence expenses incurred by Provider's Personnel with "
            "Client's prior written approval, at cost and in accordance with Client's travel policy, on production "
            "of receipts.",
        )),
        Clause("Acceptance", (
            "Client shall review each deliverable within ten (10) Business Days of delivery and either accept it or "
            "notify Provider of the ways in which it fails the acceptance criteria. Provider shall correct the "
            "failures and redeliver it, and the deliverable is accepted when it passes the criteria or when Client "
            "uses it in production.",
        )),
        Clause("Client Responsibilities", (
            "Client shall provide Provider with timely access to its premises, systems, information and personnel "
            "as reasonably required for the Services, and Provider is not liable for any delay to the extent caused "
            "by Client's failure to do so.",
        )),
        Clause("Governance", (
            "The Parties' account managers shall meet at least monthly to review performance against the service "
            "levels, risks, issues and planned changes. Senior executives of both Parties shall meet each quarter to "
            "review the relationship as a whole.",
        )),
        Clause("Reporting", (
            "By the tenth Business Day of each month Provider shall deliver a report of its performance in the "
            "preceding month, including service level performance, incidents, open risks and a forecast of the "
            "resources required for the next three months.",
        )),
        Clause("Personnel Screening", (
            "Provider shall ensure that all Personnel who have access to Client's systems or data have passed "
            "background checks appropriate to their role and permitted by law, and have completed Provider's "
            "security awareness training.",
        )),
        Clause("Transition Assistance", (
            "On the expiry or termination of this Agreement, Provider shall for up to ninety (90) days provide such "
            "assistance as Client reasonably requests to transfer the Services to Client or a replacement provider, "
            "at the rates in the rate card.",
        )),
        Clause("Benchmarking", (
            "No more than once in any twelve months Client may appoint an independent benchmarker to compare the "
            "Fees with those charged for similar services. If the Fees exceed the upper quartile of the comparison, "
            "the Parties shall negotiate in good faith an adjustment to the Fees.",
        )),
        Clause("Time Records", (
            "Provider shall keep accurate time records for all Personnel who perform chargeable work outside the "
            "monthly fee, and shall provide copies of those records with each invoice that includes such work.",
        )),
    ]  # fmt: skip
    schedules = [
        ("Rate Card", [f"{role}: {money(rng.randrange(90, 450, 5), cur)} per hour" for role in ROLES_RATES]),
        ("Service Level Schedule", [
            "Availability of hosted components: at least 99.5 percent in each calendar month.",
            "Critical incidents: acknowledged within 30 minutes and resolved or worked around within 4 hours.",
            "High-priority incidents: acknowledged within 2 hours and resolved within 1 Business Day.",
            "Service requests: completed within 3 Business Days of receipt.",
            "Customer satisfaction: an average score of at least 4 out of 5 in the monthly survey.",
            "Reports: delivered by the tenth Business Day of each month.",
        ]),
        ("Milestones", [f"Milestone {i}: {step}, to be completed by {day(add_months(start, i))}." for i, step in
                        enumerate(("kick-off meeting and project plan", "discovery and requirements sign-off",
                                   "design approval", "build complete", "user acceptance testing complete",
                                   "go-live", "post-launch review"), start=1)]),
    ]  # fmt: skip
    summary = [
        pick(rng, f"{a.name} will provide {service} to {b.name} under a services agreement starting {day(start)}.",
             f"This services agreement, effective {day(start)}, has {a.name} providing {service} to {b.name}."),
        f"The agreement runs for {months} months and the client pays a monthly fee of {money(fee, cur)}.",
        f"{manager} is the provider's account manager for the services.",
        f"If a service level is missed in a month, the client receives a credit of {credit} percent of that "
        "month's fee.",
        pick(rng, f"The agreement is governed by the laws of {place.law}.",
             f"The laws of {place.law} govern the agreement."),
    ]  # fmt: skip
    return Doc("services", "Master Services Agreement", preamble("Master Services Agreement", start, a, b, roles),
               [f"Provider is in the business of providing {service}",
                "Client wishes to engage Provider to provide those services on the terms of this Agreement"],
               core, extra, schedules, signatures(a, b, roles, start), summary, ctx,
               style=rng.choice(("numbered", "article", "section")), detail=2)  # fmt: skip


ASSETS = ("the commercial laundry equipment business", "the specialty coffee roasting business",
          "the regional courier delivery business", "the veterinary clinic business",
          "the industrial 3D-printing services business", "the organic skincare product line",
          "the solar panel installation business", "the boutique hotel booking platform")  # fmt: skip
EQUIPMENT = ("industrial washer", "tumble dryer", "delivery van", "roasting drum", "packaging line", "forklift truck",
             "diagnostic scanner", "3D printer", "server rack", "point-of-sale terminal", "refrigerated display",
             "laser cutter", "air compressor", "label printer", "pallet racking bay")  # fmt: skip


def purchase(rng: random.Random, names: Names) -> Doc:
    place = rng.choice(JURISDICTIONS)
    a, b = names.company(place), names.company(rng.choice(JURISDICTIONS))
    roles, cur = ("Seller", "Buyer"), place.currency
    date = dt.date(rng.randint(2019, 2025), rng.randint(1, 12), rng.randint(1, 28))
    closing = date + dt.timedelta(days=rng.randint(20, 120))
    price = rng.randrange(250_000, 45_000_000, 5_000)
    deposit = price // rng.choice((10, 20))
    holdback, survival = rng.choice((5, 10, 15)), rng.choice((12, 18, 24))
    assets = rng.choice(ASSETS)
    noncompete = rng.choice((2, 3, 5))
    ctx = contract_context(rng, place, a, b, roles, "Buyer", cur, price)
    core = [
        Clause("Sale and Purchase", (
            f"On the terms of this Agreement, Seller shall sell and Buyer shall purchase {assets} of Seller, "
            "including its equipment, inventory, customer contracts, goodwill and the Intellectual Property Rights "
            "used exclusively in it (the \"Purchased Assets\"), free from all liens and encumbrances.",
        )),
        Clause("Excluded Assets and Liabilities", (
            "The Purchased Assets do not include cash, bank accounts, tax refunds, Seller's corporate records or any "
            "asset not used in the business. Buyer assumes only the obligations arising after Closing under the "
            "customer contracts it acquires, and all other liabilities remain with Seller.",
        )),
        Clause("Purchase Price", (
            f"The purchase price for the Purchased Assets is {money(price, cur)} (the \"Purchase Price\"). On signing "
            f"this Agreement Buyer shall pay a deposit of {money(deposit, cur)}, which shall be credited against the "
            "Purchase Price at Closing and refunded to Buyer if Closing does not occur other than through Buyer's "
            "default.",
            f"At Closing Buyer shall withhold {holdback} percent of the Purchase Price in escrow as security for "
            f"Seller's indemnification obligations, to be released {spelled(survival)} months after the Closing "
            "Date less any amounts then claimed.",
        )),
        Clause("Closing", (
            f"Completion of the sale and purchase (\"Closing\") shall take place on {day(closing)}, or on such other "
            "date as the Parties agree in writing (the \"Closing Date\"), by the electronic exchange of documents and "
            "payment of the balance of the Purchase Price.",
        )),
        Clause("Seller's Warranties", (
            "Seller warrants to Buyer that as of the Effective Date and the Closing Date (a) Seller has good and "
            "marketable title to the Purchased Assets; (b) the equipment is in good operating condition, ordinary "
            "wear and tear excepted; (c) the financial statements of the business delivered to Buyer fairly present "
            "its financial position; (d) there is no litigation pending or threatened that relates to the business; "
            "and (e) the business has been conducted in compliance with Applicable Law.",
        )),
        Clause("Survival of Warranties", (
            f"The warranties in this Agreement survive Closing for {spelled(survival)} months, and no claim may be "
            "brought for breach of a warranty unless notified in writing before the end of that period.",
        )),
    ]  # fmt: skip
    extra = [
        Clause("Buyer's Warranties", (
            "Buyer warrants to Seller that it has sufficient funds available to pay the Purchase Price at Closing and "
            "that no consent of any Governmental Authority is required for it to complete the purchase.",
        )),
        Clause("Conditions to Closing", (
            "Each Party's obligation to complete is conditional on the other Party's warranties being true in all "
            "material respects at Closing, the delivery of the closing documents, and the absence of any order of a "
            "court that prevents Closing. Buyer's obligation is also conditional on the consent of the counterparties "
            "to the customer contracts listed in the Schedules.",
        )),
        Clause("Conduct of Business before Closing", (
            "Between the Effective Date and Closing, Seller shall carry on the business in the ordinary course, "
            "maintain the Purchased Assets in good condition, and not sell any Purchased Asset outside the ordinary "
            "course, enter into any contract with a value above the threshold agreed by the Parties, or change "
            "employee compensation without Buyer's consent.",
        )),
        Clause("Access to Information", (
            "Before Closing, Seller shall give Buyer and its advisers reasonable access during business hours to the "
            "premises, books, records and employees of the business for the purpose of preparing for Closing.",
        )),
        Clause("Employees", (
            "Buyer shall offer employment, effective on the Closing Date, to the employees of the business on terms "
            "no less favourable in the aggregate than their current terms. Seller remains responsible for all wages, "
            "bonuses and accrued benefits of those employees up to the Closing Date.",
        )),
        Clause("Non-Competition by Seller", (
            f"For {spelled(noncompete)} years after Closing, Seller shall not carry on or be interested in any "
            "business that competes with the business in the geographic areas in which it operated at Closing, and "
            "shall not solicit any customer of the business for a competing purpose.",
        )),
        Clause("Allocation of Purchase Price", (
            "The Parties shall allocate the Purchase Price among the Purchased Assets as set out in the Schedules and "
            "shall file all tax returns consistently with that allocation.",
        )),
        Clause("Risk of Loss", (
            "Risk of loss of or damage to the Purchased Assets remains with Seller until Closing. If a material part "
            "of the Purchased Assets is destroyed before Closing, Buyer may elect to complete with an appropriate "
            "reduction in the Purchase Price or to terminate this Agreement and recover the deposit.",
        )),
        Clause("Transitional Services", (
            "For up to six (6) months after Closing, Seller shall provide Buyer with the accounting, information "
            "technology and logistics support reasonably necessary for the orderly transfer of the business, at "
            "Seller's cost plus ten percent (10%).",
        )),
        Clause("Accounts Receivable", (
            "Accounts receivable of the business arising before Closing remain the property of Seller. Any payment "
            "received by Buyer after Closing in respect of them shall be remitted to Seller within ten (10) Business "
            "Days of receipt.",
        )),
        Clause("Indemnification by Seller for Excluded Liabilities", (
            "Seller shall indemnify Buyer against all Losses arising from any liability of the business that is not "
            "expressly assumed by Buyer, including taxes relating to periods before Closing.",
        )),
    ]  # fmt: skip
    serial = rng.randint(100_000, 900_000)
    schedules = [
        ("Purchased Equipment", [f"{i}. {item.capitalize()}, serial number {serial + i * 97}" for i, item in
                                 enumerate(rng.sample(EQUIPMENT, k=rng.randint(8, len(EQUIPMENT))), start=1)]),
        ("Closing Deliverables", [
            "A bill of sale for the Purchased Assets signed by Seller.",
            "Assignments of the customer contracts, with the consents of the counterparties.",
            "Releases of all liens and encumbrances over the Purchased Assets.",
            "A certificate of an officer of each Party confirming that its warranties remain true.",
            "Evidence of the payment of the balance of the Purchase Price.",
            "Assignments of registered Intellectual Property Rights in a form suitable for recording.",
        ]),
        ("Allocation of the Purchase Price", [
            f"Equipment: {rng.randint(20, 45)} percent of the Purchase Price.",
            f"Inventory: {rng.randint(5, 20)} percent of the Purchase Price.",
            "Customer contracts and goodwill: the balance of the Purchase Price.",
        ]),
    ]  # fmt: skip
    summary = [
        pick(rng, f"{b.name} agreed to buy {assets} of {a.name} under an asset purchase agreement dated {day(date)}.",
             f"Under an asset purchase agreement dated {day(date)}, {a.name} sells {assets} to {b.name}."),
        f"The purchase price is {money(price, cur)}, with a deposit of {money(deposit, cur)} paid on signing.",
        f"Closing is scheduled for {day(closing)}, and {holdback} percent of the price is held in escrow for "
        f"{survival} months to secure the seller's indemnities.",
        f"The seller may not compete with the business for {noncompete} years after closing.",
        pick(rng, f"The agreement is governed by the laws of {place.law}.",
             f"The laws of {place.law} govern the agreement."),
    ]  # fmt: skip
    return Doc("purchase", "Asset Purchase Agreement", preamble("Asset Purchase Agreement", date, a, b, roles),
               [f"Seller carries on {assets}", "Buyer wishes to purchase the assets of that business"],
               core, extra, schedules, signatures(a, b, roles, date), summary, ctx,
               style=rng.choice(("numbered", "article")))  # fmt: skip


def loan(rng: random.Random, names: Names) -> Doc:
    place = rng.choice(JURISDICTIONS)
    a, b = names.company(place), names.company(place)
    roles, cur = ("Lender", "Borrower"), place.currency
    date = dt.date(rng.randint(2019, 2025), rng.randint(1, 12), rng.randint(1, 28))
    principal = rng.randrange(50_000, 8_000_000, 5_000)
    rate = rng.choice((4.25, 5.5, 6.75, 7.0, 8.25, 9.5))
    months = rng.choice((24, 36, 48, 60))
    maturity = add_months(date, months)
    monthly_rate = rate / 1200
    instalment = round(principal * monthly_rate / (1 - (1 + monthly_rate) ** -months))
    purpose = rng.choice(
        (
            "the purchase of new production equipment",
            "working capital",
            "the refurbishment of its warehouse",
            "the acquisition of a delivery fleet",
            "the expansion of its retail stores",
        )
    )
    ctx = contract_context(rng, place, a, b, roles, "Borrower", cur, principal)
    core = [
        Clause("The Loan", (
            f"Lender agrees to lend Borrower the principal sum of {money(principal, cur)} (the \"Loan\"), to be "
            "advanced in a single drawdown within five (5) Business Days after the conditions precedent are met.",
        )),
        Clause("Purpose", (f"Borrower shall use the Loan only for {purpose}.",)),
        Clause("Interest", (
            f"The outstanding principal bears interest at a fixed rate of {rate} percent per year, calculated on the "
            "basis of a 365-day year and the actual number of days elapsed, and payable monthly in arrears.",
        )),
        Clause("Repayment", (
            f"Borrower shall repay the Loan in {months} equal monthly instalments of {money(instalment, cur)}, each "
            "comprising principal and interest, beginning one month after drawdown. All amounts outstanding shall "
            f"be repaid in full on {day(maturity)} (the \"Maturity Date\").",
        )),
        Clause("Events of Default", (
            "Each of the following is an event of default: Borrower fails to pay any amount within five (5) Business "
            "Days after its due date; any representation made by Borrower proves materially incorrect; Borrower "
            "breaches a financial covenant; or an Insolvency Event occurs in relation to Borrower. On an event of "
            "default Lender may declare the Loan immediately due and payable.",
        )),
    ]  # fmt: skip
    extra = [
        Clause("Conditions Precedent", (
            "Lender is not obliged to advance the Loan until it has received a certified copy of Borrower's board "
            "resolution approving this Agreement, the executed security documents, evidence of insurance of the "
            "charged assets, and a certificate that no event of default has occurred.",
        )),
        Clause("Prepayment", (
            "Borrower may prepay the Loan in whole or in part on not less than ten (10) Business Days' notice, "
            "together with accrued interest and a prepayment fee of one percent (1%) of the amount prepaid if the "
            "prepayment is made within the first two years. Partial prepayments are applied to instalments in "
            "inverse order of maturity.",
        )),
        Clause("Security", (
            "Borrower's obligations are secured by a first-ranking security interest over its equipment, inventory "
            "and receivables, granted in a security agreement of even date with this Agreement.",
        )),
        Clause("Financial Covenants", (
            "Borrower shall maintain, tested at the end of each financial quarter, a ratio of consolidated debt to "
            "earnings before interest, taxes, depreciation and amortisation of not more than 3.5 to 1, and a debt "
            "service coverage ratio of not less than 1.25 to 1.",
        )),
        Clause("Information Undertakings", (
            "Borrower shall deliver to Lender its audited annual financial statements within one hundred twenty (120) "
            "days after the end of each financial year, its unaudited quarterly management accounts within forty-five "
            "(45) days after the end of each quarter, and a compliance certificate with each set of accounts.",
        )),
        Clause("Negative Pledge", (
            "Borrower shall not create or permit to subsist any security interest over any of its assets other than "
            "in favour of Lender, except liens arising by operation of law in the ordinary course of business.",
        )),
        Clause("Default Interest", (
            "If Borrower fails to pay any amount when due, interest accrues on the overdue amount from the due date "
            "to the date of actual payment at a rate two percent (2%) per year above the rate otherwise applicable.",
        )),
        Clause("Arrangement Fee", (
            "Borrower shall pay Lender an arrangement fee of one-half of one percent (0.5%) of the Loan, deducted "
            "from the amount advanced on drawdown.",
        )),
    ]  # fmt: skip
    rows, balance = [], float(principal)
    for month in range(1, months + 1):
        interest = balance * monthly_rate
        balance = max(0.0, balance - (instalment - interest))
        rows.append(
            f"Payment {month}, due {day(add_months(date, month))}: instalment {money(instalment, cur)}, "
            f"interest {money(round(interest), cur)}, balance after payment {money(round(balance), cur)}."
        )
    schedules = [("Repayment Schedule", rows)]
    summary = [
        pick(rng, f"{a.name} lends {money(principal, cur)} to {b.name} under a term loan agreement dated {day(date)}.",
             f"Under a term loan agreement dated {day(date)}, {b.name} borrows {money(principal, cur)} from {a.name}."),
        f"The loan may be used only for {purpose} and bears fixed interest of {rate} percent per year.",
        f"It is repaid in {months} monthly instalments of {money(instalment, cur)} and matures on {day(maturity)}.",
        "The events of default, which let the lender demand immediate repayment, include missed payments, "
        "incorrect representations, covenant breaches and insolvency.",
        pick(rng, f"The agreement is governed by the laws of {place.law}.",
             f"The laws of {place.law} govern the agreement."),
    ]  # fmt: skip
    return Doc("loan", "Term Loan Agreement", preamble("Term Loan Agreement", date, a, b, roles),
               [f"Borrower has requested a term loan to finance {purpose}", "Lender is willing to make that loan"],
               core, extra, schedules, signatures(a, b, roles, date), summary, ctx, commercial=False,
               style=rng.choice(("numbered", "article", "section")))  # fmt: skip


DISPUTES = ("unpaid invoices for freight services", "alleged defects in a commercial roof installation",
            "the termination of a distribution agreement", "alleged misappropriation of customer lists",
            "late delivery of custom manufacturing equipment", "unpaid commissions under a sales agency agreement",
            "water damage to leased warehouse premises",
            "alleged breach of a software implementation contract")  # fmt: skip


def settlement(rng: random.Random, names: Names) -> Doc:
    place = rng.choice(JURISDICTIONS)
    a = names.individual(place) if rng.random() < 0.4 else names.company(place)
    b = names.company(place)
    roles, cur = ("Plaintiff", "Defendant"), place.currency
    date = dt.date(rng.randint(2019, 2025), rng.randint(1, 12), rng.randint(1, 28))
    amount = rng.randrange(15_000, 6_500_000, 2_500)
    due_days = rng.choice((10, 14, 30, 45))
    case = f"{date.year - rng.randint(1, 3)}-CV-{rng.randint(1_000, 99_999):05d}"
    dispute = rng.choice(DISPUTES)
    ctx = contract_context(rng, place, a, b, roles, "Defendant", cur, amount)
    core = [
        Clause("Background of the Dispute", (
            f"Plaintiff commenced an action against Defendant in the {place.court}, Case No. {case} (the "
            f"\"Action\"), arising from {dispute}. Defendant denies all liability. The Parties wish to settle the "
            "Action to avoid the cost and uncertainty of further litigation.",
        )),
        Clause("Settlement Payment", (
            f"Defendant shall pay Plaintiff the total sum of {money(amount, cur)} (the \"Settlement Amount\") within "
            f"{spelled(due_days)} days after the Effective Date, by wire transfer to the client trust account of "
            "Plaintiff's counsel, in full and final settlement of all claims in the Action.",
        )),
        Clause("Dismissal", (
            "Within five (5) Business Days after receipt of the Settlement Amount, Plaintiff shall file a stipulation "
            "of dismissal of the Action with prejudice, each Party to bear its own costs and attorneys' fees.",
        )),
        Clause("Mutual Release", (
            "Effective on receipt of the Settlement Amount, each Party releases the other and its officers, "
            "directors, employees, insurers and affiliates from all claims, known or unknown, arising out of or "
            "relating to the facts alleged in the Action, except claims to enforce this Agreement.",
        )),
        Clause("No Admission of Liability", (
            "This Agreement is a compromise of disputed claims. Nothing in it is an admission of liability or "
            "wrongdoing by either Party, and it shall not be admissible in any proceeding except one to enforce it.",
        )),
    ]  # fmt: skip
    extra = [
        Clause("Confidentiality of Settlement", (
            "The Parties shall keep the terms of this Agreement confidential, except for disclosure to their "
            "attorneys, accountants, insurers and tax advisers, as required by law or court order, or as needed to "
            "enforce this Agreement. Either Party may state that the Action has been resolved.",
        )),
        Clause("Non-Disparagement", (
            "Neither Party shall make any public statement that disparages the other Party or its products, services, "
            "officers or employees in connection with the matters alleged in the Action.",
        )),
        Clause("Tax Treatment", (
            "Each Party is responsible for its own tax obligations arising from the Settlement Amount. Defendant "
            "shall issue any information returns required by law, and Plaintiff shall provide a completed tax form "
            "before payment is made.",
        )),
        Clause("Attorneys' Fees", (
            "Each Party shall bear its own attorneys' fees and costs incurred in the Action and in the negotiation "
            "of this Agreement, except that in any action to enforce this Agreement the prevailing Party may recover "
            "its reasonable attorneys' fees.",
        )),
        Clause("Representations of the Parties", (
            "Each Party represents that it has not assigned any claim released by this Agreement, that it has read "
            "this Agreement and had the opportunity to consult counsel, and that it enters into this Agreement "
            "voluntarily.",
        )),
        Clause("Default in Payment", (
            "If the Settlement Amount is not paid when due and the failure is not cured within five (5) Business "
            "Days after written notice, Plaintiff may apply to the court for entry of judgment against Defendant for "
            "the unpaid balance together with interest at the statutory rate.",
        )),
        Clause("Court Retains Jurisdiction", (
            "The Parties shall request that the court retain jurisdiction over the Parties to enforce this Agreement "
            "until its terms are fully performed.",
        )),
    ]  # fmt: skip
    summary = [
        pick(rng, f"{a.name} and {b.name} settled Case No. {case} in the {place.court} by an agreement dated "
                  f"{day(date)}.",
             f"This settlement agreement dated {day(date)} resolves the action brought by {a.name} against {b.name} "
             f"(Case No. {case})."),
        f"The dispute arose from {dispute}.",
        f"{b.name} will pay {money(amount, cur)} within {due_days} days, after which the action is dismissed with "
        "prejudice.",
        "The parties release each other from the claims in the action, and the defendant admits no liability.",
        pick(rng, f"The agreement is governed by the laws of {place.law}.",
             f"The laws of {place.law} govern the agreement."),
    ]  # fmt: skip
    return Doc("settlement", "Settlement Agreement and Mutual Release",
               preamble("Settlement Agreement and Mutual Release", date, a, b, roles),
               [f"Plaintiff commenced the Action against Defendant arising from {dispute}",
                "the Parties wish to resolve the Action on the terms set out below"],
               core, extra, [], signatures(a, b, roles, date), summary, ctx, commercial=False,
               style=rng.choice(("numbered", "section")))  # fmt: skip


APPS = ("Pocketbloom", "Tallyho", "Brightnest", "Cartwheel", "Mapleleaf Meals", "Snapfolio", "Trailmate",
        "Quietdesk", "Petpal", "Lumiroom")  # fmt: skip
APP_KINDS = ("a meal-planning and grocery delivery app", "a photo storage and sharing service",
             "a personal budgeting app", "a home-fitness video subscription", "an online tutoring marketplace",
             "a smart-home thermostat companion app", "a pet-sitting booking platform",
             "a team chat and file sharing service")  # fmt: skip


def policy_opening(title: str, company: Party, app: str, what: str, date: dt.date, place: Jurisdiction) -> str:
    if title == "Terms of Service":
        subject, takes, is_governed = f"These {title} apply", "They take", "They are governed"
    else:
        subject, takes, is_governed = f"This {title} applies", "It takes", "It is governed"
    return (
        f"{app.upper()} {title.upper()}\n\nLast updated: {day(date)}\n\n"
        f'{subject} to {app}, {what} operated by {company.name} ("{company.short}", "we", "us" or "our"), '
        f"{company.description} with offices at {company.address}. {takes} effect on {day(date)}. {is_governed} "
        f"by the laws of {place.law}."
    )


def terms_of_service(rng: random.Random, names: Names) -> Doc:
    place = rng.choice(JURISDICTIONS)
    a = names.company(place)
    app, what = rng.choice(APPS), rng.choice(APP_KINDS)
    date = dt.date(rng.randint(2019, 2025), rng.randint(1, 12), rng.randint(1, 28))
    fee, trial, age = rng.choice((4.99, 7.99, 9.99, 12.99, 19.99)), rng.choice((7, 14, 30)), rng.choice((13, 16, 18))
    refund, cap, city = rng.choice((14, 30)), rng.choice((50, 100, 500)), rng.choice(place.cities)
    cur = place.currency
    ctx = {"A": a.short, "B": "you", "law": place.law, "venue": city}
    core = [
        Clause("Acceptance of These Terms", (
            f"By creating an account or using {app} you agree to these Terms. If you do not agree, do not use the "
            "service. If you use the service on behalf of an organisation, you confirm that you may bind it.",
        )),
        Clause("Eligibility", (
            f"You must be at least {spelled(age)} years old to use {app}. By using it you confirm that you meet this "
            "requirement and that you are not barred from using it under any applicable law.",
        )),
        Clause("Subscriptions and Fees", (
            f"Premium features require a subscription of {cur}{fee} per month, billed in advance to your chosen "
            "payment method until you cancel. We may change the price on at least thirty (30) days' notice, and the "
            "change applies from your next billing period.",
            f"New subscribers receive a free trial of {spelled(trial)} days. Unless you cancel before the trial ends, "
            "your subscription starts automatically at the end of the trial.",
        )),
        Clause("Cancellation and Refunds", (
            f"You may cancel at any time in your account settings. If you cancel within {spelled(refund)} days of "
            "your first paid charge you will receive a full refund of that charge; otherwise cancellation takes effect "
            "at the end of the current billing period and fees already paid are not refunded.",
        )),
        Clause("Limitation of Liability", (
            f"To the extent permitted by law, our total liability to you for all claims relating to {app} is limited "
            f"to the greater of the fees you paid us in the twelve months before the claim and {cur}{cap}.",
        )),
        Clause("Governing Law and Disputes", (
            f"These Terms are governed by the laws of {place.law}. Any dispute that cannot be resolved informally "
            f"shall be resolved by individual binding arbitration in {city}, and you waive any right to take part in "
            "a class action, except where the law of your country of residence does not allow this waiver.",
        )),
    ]  # fmt: skip
    extra = [
        Clause("Your Account", (
            "You are responsible for keeping your login details confidential and for all activity under your "
            "account. Tell us immediately at the contact address below if you suspect unauthorised use.",
        )),
        Clause("Acceptable Use", (
            "You must not use the service to break the law, infringe anyone's rights, send spam, upload malware, "
            "harass other users, scrape data at scale, attempt to gain unauthorised access to our systems, or "
            "interfere with the service's operation.",
        )),
        Clause("Your Content", (
            "You keep ownership of the content you upload. You grant us a worldwide, royalty-free licence to host, "
            "store, reproduce and display it only as needed to operate and improve the service, which ends when you "
            "delete the content, subject to reasonable backup retention periods.",
        )),
        Clause("Our Intellectual Property", (
            "The service, including its software, design, text and trade marks, is owned by us or our licensors and "
            "is protected by law. These Terms give you a limited, revocable, non-exclusive right to use the service "
            "for personal, non-commercial purposes.",
        )),
        Clause("Third-Party Services", (
            "The service may link to or integrate with services provided by others, such as payment processors and "
            "map providers. Their terms govern your use of them, and we are not responsible for their content or "
            "practices.",
        )),
        Clause("Suspension and Termination", (
            "We may suspend or close your account if you materially breach these Terms, if required by law, or if "
            "your use creates a risk for other users. Where reasonable we will tell you in advance and give you the "
            "chance to export your content.",
        )),
        Clause("Disclaimers", (
            "The service is provided \"as is\" and \"as available\". To the extent permitted by law we exclude all "
            "implied warranties, and we do not promise that the service will be uninterrupted or error-free.",
        )),
        Clause("Indemnity", (
            "You will compensate us for any reasonable costs we incur as a result of a claim by a third party that "
            "arises from your breach of these Terms or your content, unless the claim was caused by our own fault.",
        )),
        Clause("Changes to These Terms", (
            "We may update these Terms to reflect changes to the service or the law. We will give you at least "
            "fifteen (15) days' notice of material changes by e-mail or in the app, and your continued use after that "
            "date means you accept the changes.",
        )),
        Clause("Consumer Rights", (
            "Nothing in these Terms affects the statutory rights you have as a consumer that cannot be waived or "
            "limited by contract.",
        )),
    ]  # fmt: skip
    summary = [
        f"{a.name} sets the terms of service for {app}, {what}, effective {day(date)}.",
        f"The service requires users to be at least {age} years old, and premium features cost {cur}{fee} per "
        f"month after a {trial}-day free trial.",
        f"A subscriber who cancels within {refund} days of the first paid charge gets a full refund.",
        f"Liability is capped at the greater of the fees paid in the prior twelve months and {cur}{cap}.",
        f"The terms are governed by the laws of {place.law}, with individual arbitration in {city}.",
    ]  # fmt: skip
    closing = f"CONTACT\n\nQuestions about these Terms can be sent to {a.email} or to {a.address}.\n"
    return Doc("terms_of_service", "Terms of Service",
               policy_opening("Terms of Service", a, app, what, date, place), [], core, extra, [], closing, summary,
               ctx, commercial=False, general=False, detail=2)  # fmt: skip


def privacy_policy(rng: random.Random, names: Names) -> Doc:
    place = rng.choice(JURISDICTIONS)
    a = names.company(place)
    app, what = rng.choice(APPS), rng.choice(APP_KINDS)
    date = dt.date(rng.randint(2019, 2025), rng.randint(1, 12), rng.randint(1, 28))
    retention, age, days = rng.choice((6, 12, 24, 36)), rng.choice((13, 16)), rng.choice((30, 45))
    email = f"privacy@{app.lower().replace(' ', '')}.example"
    ctx = {"A": a.short, "B": "you", "law": place.law, "venue": rng.choice(place.cities)}
    core = [
        Clause("Information We Collect", (
            "We collect information you give us, such as your name, e-mail address, payment details and the content "
            "you create; information collected automatically, such as device identifiers, IP address, app "
            "interactions and crash logs; and, with your permission, your approximate location.",
        )),
        Clause("How We Use Information", (
            f"We use your information to provide and improve {app}, to process payments, to keep the service "
            "secure, to send you service messages and, where you have agreed, marketing messages, and to comply with "
            "our legal obligations.",
        )),
        Clause("How Long We Keep Information", (
            f"We keep your account information while your account is open and for {spelled(retention)} months after "
            "you close it, unless we must keep it longer to comply with law, resolve disputes or enforce our "
            "agreements. Backups are overwritten on a rolling basis.",
        )),
        Clause("Children", (
            f"{app} is not directed to children under {spelled(age)}, and we do not knowingly collect personal "
            "information from them. If you believe a child has given us information, contact us and we will delete it.",
        )),
        Clause("Your Rights", (
            "Depending on where you live, you may have the right to access, correct, delete or export your "
            f"information, to object to or restrict certain processing, and to withdraw consent. Send requests to "
            f"{email}; we respond within {spelled(days)} days.",
        )),
    ]  # fmt: skip
    extra = [
        Clause("Legal Bases", (
            "Where the law requires a legal basis, we rely on performance of our contract with you, our legitimate "
            "interests in running and securing the service, your consent, and compliance with legal obligations.",
        )),
        Clause("Sharing", (
            "We share information with service providers who process it on our behalf, such as hosting, payment "
            "and analytics providers, under contracts that require them to protect it; with authorities where the law "
            "requires; and with a buyer of our business, who must honour this policy. We do not sell personal "
            "information.",
        )),
        Clause("Cookies and Similar Technologies", (
            "Our website and app use cookies and software development kits to remember your preferences, measure "
            "usage and prevent fraud. You can control non-essential cookies in the cookie settings of our website and "
            "in your device settings.",
        )),
        Clause("Security", (
            "We protect your information with encryption in transit and at rest, access controls, staff training and "
            "regular security testing. No method of transmission over the internet is completely secure, so we "
            "cannot guarantee absolute security.",
        )),
        Clause("International Transfers", (
            "We may process information in countries other than the one in which you live. Where we do, we use "
            "safeguards recognised by applicable law, such as standard contractual clauses, to protect it.",
        )),
        Clause("Marketing Choices", (
            "You can opt out of marketing e-mails using the unsubscribe link in each message, and of push "
            "notifications in your device settings. We will still send you messages about your account and the "
            "service.",
        )),
        Clause("Changes to This Policy", (
            "We will post any changes to this policy in the app and, if they are significant, notify you by e-mail "
            "before they take effect.",
        )),
    ]  # fmt: skip
    summary = [
        f"This privacy policy of {a.name} covers {app}, {what}, and takes effect on {day(date)}.",
        "It collects account details, payment information, device and usage data and, with permission, "
        "approximate location, and uses them to run, secure and improve the service.",
        f"Account information is kept for {retention} months after an account is closed unless the law requires "
        "longer retention.",
        f"The service is not directed to children under {age}, and privacy requests sent to {email} are answered "
        f"within {days} days.",
        f"The policy is governed by the laws of {place.law}.",
    ]  # fmt: skip
    closing = f"CONTACT US\n\nFor any question about this policy, write to {email} or to {a.name}, {a.address}.\n"
    return Doc("privacy_policy", "Privacy Policy", policy_opening("Privacy Policy", a, app, what, date, place), [],
               core, extra, [], closing, summary, ctx, commercial=False, general=False, detail=1)  # fmt: skip


CLAIMS = (
    ("a freight services agreement", "unpaid invoices for freight carried between two distribution centres"),
    ("a supply agreement", "the delivery of packaging materials that failed the agreed quality specification"),
    ("a software implementation contract", "an implementation project that missed its go-live date by months"),
    ("a construction subcontract", "unpaid progress payments for roofing work"),
    ("a distribution agreement", "the termination of an exclusive distributorship without the contractual notice"),
    ("a commercial lease", "unpaid rent and repair costs after the tenant vacated the premises"),
)


def court_opinion(rng: random.Random, names: Names) -> Doc:
    place = rng.choice(JURISDICTIONS)
    p = names.individual(place) if rng.random() < 0.4 else names.company(place)
    d = names.company(place)
    cur = place.currency
    decided = dt.date(rng.randint(2019, 2025), rng.randint(1, 12), rng.randint(1, 28))
    contract_date = decided - dt.timedelta(days=rng.randint(500, 1_500))
    filed = decided - dt.timedelta(days=rng.randint(200, 450))
    case = f"{filed.year}-CV-{rng.randint(1_000, 99_999):05d}"
    judge = person(rng)
    contract, claim = rng.choice(CLAIMS)
    claimed = rng.randrange(40_000, 4_000_000, 500)
    won = rng.random() < 0.65
    awarded = rng.randrange(claimed // 3, claimed, 100) if won else 0
    interest = rng.choice((5, 6, 7, 9))
    caption = (f"IN THE {place.court.upper()}\n\n{p.name}, Plaintiff,\nv.\n{d.name}, Defendant.\n\nCase No. {case}\n\n"
               f"MEMORANDUM OPINION AND ORDER\n\nDecided: {day(decided)}\n\nBefore: Judge {judge}.")  # fmt: skip
    outcome = (
        f"the Court finds for Plaintiff and awards damages of {money(awarded, cur)} with pre-judgment interest at "
        f"{interest} percent per year"
        if won
        else "the Court finds for Defendant and dismisses the complaint"
    )
    core = [
        Clause("Introduction", (
            f"Plaintiff {p.name} brings this action against Defendant {d.name} for breach of {contract} dated "
            f"{day(contract_date)}, seeking damages of {money(claimed, cur)}. The dispute concerns {claim}. After a "
            f"bench trial, and for the reasons below, {outcome}.",
        )),
        Clause("Background", (
            f"The parties entered into {contract} on {day(contract_date)}. Under it, each side undertook obligations "
            "of performance and payment that were set out in a written statement of terms, which both parties "
            "signed and which neither party contends was later amended in writing.",
            f"Problems arose within the first year. Plaintiff's witnesses described {claim}, and the "
            "correspondence admitted at trial shows that the parties exchanged complaints for several months before "
            "their relationship broke down entirely.",
        )),
        Clause("Procedural History", (
            f"Plaintiff filed its complaint on {day(filed)}. Defendant answered, denying liability and asserting that "
            "Plaintiff had failed to mitigate its losses. The parties completed discovery, and the Court denied "
            "cross-motions for summary judgment because material facts remained in dispute. The case was tried to "
            f"the Court over four days. Venue in the {place.court} is undisputed.",
        )),
        Clause("Discussion", (
            "A. Formation and terms. The existence of the contract is not disputed. The Court construes its terms "
            "according to their plain meaning, reading the agreement as a whole and giving effect to each provision.",
            "B. Breach. " + ("The evidence establishes by a preponderance that Defendant failed to perform its "
            "obligations as they fell due, and that the failure was not excused by any act of Plaintiff." if won else
            "The evidence does not establish that Defendant breached the contract. The delays Plaintiff complains of "
            "were caused in substantial part by Plaintiff's own late instructions."),
            "C. Damages. " + (f"Plaintiff proved damages of {money(awarded, cur)} with reasonable certainty. The "
            "balance of the amount claimed rested on projections of lost business that the Court finds speculative."
            if won else "Because no breach was proved, the Court does not reach the question of damages."),
        )),
        Clause("Conclusion", (
            f"For these reasons, {outcome}. "
            + ("Each party shall bear its own attorneys' fees. The Clerk shall enter judgment accordingly."
               if won else "Defendant's request for attorneys' fees is denied. The Clerk shall close the case."),
        )),
    ]  # fmt: skip
    extra = [
        Clause("Legal Standard", (
            "To prevail on a claim for breach of contract, a plaintiff must prove the existence of a contract, its "
            "own performance or an excuse for non-performance, the defendant's breach, and resulting damages. Each "
            "element must be established by a preponderance of the evidence.",
        )),
        Clause("Findings of Fact", (
            "The Court heard testimony from six witnesses and received more than two hundred exhibits. The Court "
            "found the contemporaneous e-mails more reliable than the witnesses' recollections where the two "
            "conflicted, given the time that had passed and the witnesses' interest in the outcome.",
            "The Court credits the testimony of the parties' project managers about the sequence of events, which was "
            "consistent and corroborated by the documents, and gives little weight to the damages expert's "
            "projections, which assumed growth the business had never achieved.",
        )),
        Clause("Mitigation", (
            "A party injured by a breach must take reasonable steps to limit its losses. The burden of proving a "
            "failure to mitigate rests on the party in breach, and Defendant did not identify any specific step that "
            "Plaintiff unreasonably failed to take.",
        )),
        Clause("Evidentiary Rulings", (
            "Defendant's motion to exclude the summary spreadsheet prepared by Plaintiff's bookkeeper is denied; the "
            "underlying records were produced in discovery and the summary is admissible as a convenient "
            "presentation of voluminous records. Plaintiff's objection to the late-disclosed expert supplement is "
            "sustained.",
        )),
    ]  # fmt: skip
    result = (f"awarded {p.name} {money(awarded, cur)} in damages with pre-judgment interest at {interest} percent"
              if won else f"found for {d.name} and dismissed the complaint")  # fmt: skip
    summary = [
        f"In {p.name} v. {d.name}, Case No. {case}, the {place.court} decided on {day(decided)} a claim for breach "
        f"of {contract} dated {day(contract_date)}.",
        f"The plaintiff sought {money(claimed, cur)} over {claim}.",
        f"After a bench trial, Judge {judge} {result}.",
        ("The court found the rest of the claim, based on projected lost business, too speculative." if won else
         "The court held that the delays were largely caused by the plaintiff's own late instructions."),
    ]  # fmt: skip
    return Doc("court_opinion", f"{p.name} v. {d.name}", caption, [], core, extra, [], "SO ORDERED.\n", summary,
               {"A": "Plaintiff", "B": "Defendant"}, commercial=False, general=False, style="opinion",
               extras_at=3)  # fmt: skip


KINDS: dict[str, KindBuilder] = {
    "nda": nda, "lease": lease, "employment": employment, "software_licence": software_licence,
    "services": services, "purchase": purchase, "loan": loan, "settlement": settlement,
    "terms_of_service": terms_of_service, "privacy_policy": privacy_policy, "court_opinion": court_opinion,
}  # fmt: skip
CONTRACT_KINDS = ("nda", "lease", "employment", "software_licence", "services", "purchase", "loan", "settlement")


def generate(seed: int = DEFAULT_SEED) -> list[dict[str, str]]:
    """The sample's records, in order: ``id``, ``title``, ``document``, ``summary`` (plus ``kind`` for the card)."""
    rng = random.Random(seed)
    names = Names(rng)
    plan: list[tuple[str, str, tuple[int, int]]] = []
    for size, count, bounds in SIZES:
        kinds = list(LONG_KINDS if size == "very_long" else CONTRACT_KINDS if size == "long" else KINDS)
        rng.shuffle(kinds)
        plan += [(size, kinds[i % len(kinds)], bounds) for i in range(count)]
    rng.shuffle(plan)
    records = []
    for number, (_size, kind, bounds) in enumerate(plan, start=1):
        doc = KINDS[kind](rng, names)
        document = render(doc, rng, rng.randint(*bounds))
        title = doc.title if kind == "court_opinion" else f"{doc.title}: {names_in(doc)}"
        summary = [sentence.replace("..", ".") for sentence in doc.summary]  # "...Inc." ends a sentence
        if rng.random() < 0.35:  # summaries of varied detail: a secondary fact is sometimes left out
            summary.pop(doc.detail)
        records.append({"id": f"legal-{number:03d}", "kind": kind, "title": title, "document": document,
                        "summary": " ".join(summary)})  # fmt: skip
    return records


def names_in(doc: Doc) -> str:
    """The parties as the document's opening names them, for the record's title."""
    first = doc.opening.split("by and between ", 1)
    if len(first) == 2:
        a = first[1].split(", ", 1)[0]
        b = first[1].split('"), and ', 1)[1].split(", ", 1)[0]
        return f"{a} and {b}"
    return doc.opening.split(" operated by ", 1)[1].split(" (", 1)[0]


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Write the synthetic legal-summary sample (documents.jsonl).")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output JSONL file (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    records = generate(args.seed)
    fields = ("id", "title", "document", "summary")
    text = "".join(json.dumps({key: r[key] for key in fields}, ensure_ascii=False) + "\n" for r in records)
    write_text_atomically(args.out, text)
    longest = max(len(r["document"]) for r in records)
    print(f"wrote {len(records)} documents to {args.out} (longest {longest:,} characters)")


if __name__ == "__main__":
    main()
