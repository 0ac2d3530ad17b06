"""The local colour of the simulation: villages, products, inputs and partners of the 14 target provinces.

Only names live here; the scenario decides what happens to them.
"""

from __future__ import annotations

from dataclasses import dataclass

from fivecogs_shared.contracts.partner import Sector

# A few real villages per province (and plausible ones where we know none), so a report reads like the field.
VILLAGES: dict[str, tuple[str, ...]] = {
    "Nakhon Si Thammarat": ("Khiriwong", "Tha Sala", "Khao Kaeo", "Pak Phanang"),
    "Nakhon Ratchasima": ("Pak Thong Chai", "Dan Kwian", "Phimai", "Sung Noen"),
    "Phetchaburi": ("Tha Yang", "Ban Laem", "Khao Yoi", "Nong Ya Plong"),
    "Phitsanulok": ("Bang Rakam", "Nakhon Thai", "Wat Bot", "Noen Maprang"),
    "Chiang Mai": ("Mae Kampong", "Bo Sang", "San Kamphaeng", "Mae Wang"),
    "Nan": ("Nong Bua", "Bo Kluea", "Pua", "Tha Wang Pha"),
    "Udon Thani": ("Ban Chiang", "Na Kha", "Kumphawapi", "Nong Han"),
    "Ubon Ratchathani": ("Khong Chiam", "Pa Ao", "Warin Chamrap", "Trakan Phuet Phon"),
    "Khon Kaen": ("Chonnabot", "Nam Phong", "Phu Wiang", "Ban Fang"),
    "Sakon Nakhon": ("Phang Khon", "Tao Ngoi", "Kusuman", "Waritchaphum"),
    "Songkhla": ("Koh Yo", "Sathing Phra", "Ranot", "Chana"),
    "Surat Thani": ("Khiri Rat Nikhom", "Chaiya", "Don Sak", "Tha Chang"),
    "Chanthaburi": ("Tha Mai", "Laem Sing", "Khlung", "Makham"),
    "Suphan Buri": ("Don Chedi", "Sam Chuk", "U Thong", "Song Phi Nong"),
}


@dataclass(frozen=True)
class Craft:
    """One kind of product a community enterprise makes, and what goes into a batch of it."""

    group: str  # how the enterprise names itself: "Ban Khiriwong <group> group"
    product: str
    unit: str
    inputs: tuple[tuple[str, str], ...]  # (item, unit) delivered into a batch


CRAFTS: dict[Sector, tuple[Craft, ...]] = {
    "agriculture": (
        Craft("organic rice", "Hom Mali jasmine rice 5 kg", "bag", (("rice seed", "kg"), ("bio-fertiliser", "kg"))),
        Craft("mangosteen", "Mangosteen box 2 kg", "box", (("fruit crates", "piece"), ("pruning labour", "day"))),
        Craft("durian", "Monthong durian", "fruit", (("organic fertiliser", "kg"), ("harvest labour", "day"))),
        Craft("banana", "Hom Thong banana bunch", "bunch", (("banana suckers", "piece"), ("compost", "kg"))),
        Craft("mushroom", "Grey oyster mushroom 500 g", "pack", (("mushroom spawn", "bag"), ("sawdust", "kg"))),
    ),
    "processing": (
        Craft(
            "herbal", "Herbal balm 50 g", "jar", (("turmeric root", "kg"), ("beeswax", "kg"), ("glass jars", "piece"))
        ),
        Craft("silk weaving", "Hand-woven silk scarf", "piece", (("silk yarn", "kg"), ("natural dye", "kg"))),
        Craft("palm sugar", "Palm sugar 500 g", "pack", (("toddy palm sap", "l"), ("firewood", "kg"))),
        Craft("dried banana", "Sun-dried banana 250 g", "pack", (("Namwa bananas", "kg"), ("packaging film", "roll"))),
        Craft("batik", "Batik sarong", "piece", (("cotton cloth", "m"), ("wax", "kg"), ("dye", "kg"))),
        Craft("chilli paste", "Nam prik chilli paste 200 g", "jar", (("dried chilli", "kg"), ("shallots", "kg"))),
    ),
    "community_tourism": (
        Craft("homestay", "Homestay night with dinner", "night", (("food supplies", "kg"), ("linen laundry", "set"))),
        Craft("farm walk", "Half-day orchard walk", "seat", (("guide fees", "day"), ("snack boxes", "piece"))),
        Craft("craft workshop", "Weaving workshop", "seat", (("workshop materials", "set"), ("guide fees", "day"))),
    ),
}

TRAINING_TOPICS = (
    "bookkeeping",
    "packaging design",
    "food safety",
    "online selling",
    "GAP field practice",
    "hospitality",
    "cooperative governance",
)

# Partners: a provincial Community Development office and a Pracharat Rak Samakkhi company per province,
# certifiers, market operators and the network desk that signs up subscribers.
CERTIFIERS = ("partner/walailak-university", "partner/tisi-tcps", "partner/otop-selection-committee")
MARKETS = ("partner/otop-trader-hub", "partner/thai-local-online-market")
NETWORK_DESK = "partner/pracharat-network-desk"
# Buyers pay through their market, or straight to the programme's bank for community enterprises (BAAC), which
# then reports the payment itself: a payment may then reach fivecogs before the market's order does.
PAYMENT_DESK = "partner/baac-payments"
BUYERS = ("bkk-hotel-group", "korat-school-canteen", "hatyai-retailer", "cm-tour-agency", "online-shopper")


def slug(province: str) -> str:
    return province.lower().replace(" ", "-")


def cdd_office(province: str) -> str:
    return f"partner/cdd-{slug(province)}"


def pracharat_company(province: str) -> str:
    return f"partner/pracharat-{slug(province)}"


def short_code(province: str) -> str:
    """Initials, as officials abbreviate provinces in file numbers: "Nakhon Si Thammarat" -> "nst"."""
    return "".join(word[0] for word in province.lower().split())
