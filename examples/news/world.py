"""The fixed newsroom landscape the synthetic news catalog draws from: regions, categories, publishers.

It is the same for every seed (a seed changes the articles, not the world), so a catalog of any size or
seed shares publishers, vocabularies and shares, and tests can name them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Region:
    """A partition of the catalog: its share of articles and its clock (for the daily cycle)."""

    name: str
    share: float
    utc_offset_hours: float


@dataclass(frozen=True)
class Category:
    """A section of the paper: its share of articles, its topics (most common first) and title words."""

    name: str
    share: float
    topics: tuple[str, ...]
    words: tuple[str, ...]


@dataclass(frozen=True)
class Publisher:
    """An outlet: the region it mostly writes for and how often its articles are paywalled."""

    name: str
    home: str
    paywall: float


# Skewed the way an English-language aggregator's traffic is: a few large markets, a long tail.
REGIONS: Final = (
    Region("us", 0.26, -5),
    Region("eu", 0.22, 1),
    Region("in", 0.14, 5.5),
    Region("uk", 0.12, 0),
    Region("br", 0.08, -3),
    Region("jp", 0.07, 9),
    Region("africa", 0.06, 1),
    Region("au", 0.05, 10),
)

CATEGORIES: Final = (
    Category(
        "politics", 0.14,
        ("election", "parliament", "policy", "campaign", "diplomacy", "courts", "immigration", "corruption"),
        ("vote", "minister", "bill", "coalition", "leader", "opposition", "reform", "debate", "poll",
         "senate", "budget", "ruling"),
    ),
    Category(
        "business", 0.13,
        ("markets", "inflation", "central-banks", "earnings", "startups", "trade", "energy-prices", "jobs"),
        ("shares", "profit", "investors", "deal", "merger", "growth", "rates", "outlook", "quarter",
         "forecast", "exports", "sales"),
    ),
    Category(
        "sport", 0.14,
        ("football", "cricket", "tennis", "basketball", "athletics", "formula-1", "rugby", "olympics"),
        ("match", "win", "season", "coach", "title", "final", "transfer", "squad", "record", "league",
         "injury", "victory"),
    ),
    Category(
        "world", 0.11,
        ("conflict", "refugees", "summit", "elections-abroad", "sanctions", "aid", "protests", "borders"),
        ("talks", "ceasefire", "envoy", "troops", "crisis", "treaty", "rally", "allies", "capital",
         "region", "unrest", "accord"),
    ),
    Category(
        "technology", 0.09,
        ("ai", "smartphones", "cybersecurity", "chips", "social-media", "cloud", "space-tech", "privacy"),
        ("launch", "update", "model", "device", "data", "platform", "hackers", "app", "software", "users",
         "startup", "network"),
    ),
    Category(
        "entertainment", 0.09,
        ("film", "music", "television", "celebrities", "streaming", "gaming", "awards", "festivals"),
        ("premiere", "album", "series", "star", "tour", "trailer", "box-office", "sequel", "cast",
         "release", "chart", "show"),
    ),
    Category(
        "health", 0.07,
        ("vaccines", "nutrition", "mental-health", "hospitals", "drugs", "fitness", "pandemic", "ageing"),
        ("patients", "doctors", "trial", "treatment", "risk", "clinic", "diet", "sleep", "disease", "care",
         "therapy", "symptoms"),
    ),
    Category(
        "lifestyle", 0.07,
        ("food", "parenting", "relationships", "homes", "wellness", "money-tips", "pets", "gardening"),
        ("recipe", "tips", "family", "kitchen", "savings", "weekend", "habits", "design", "dog", "garden",
         "ideas", "guide"),
    ),
    Category(
        "science", 0.05,
        ("space", "physics", "genetics", "archaeology", "oceans", "neuroscience", "astronomy", "materials"),
        ("study", "researchers", "discovery", "telescope", "species", "experiment", "findings", "cells",
         "particles", "fossil", "mission", "lab"),
    ),
    Category(
        "culture", 0.04,
        ("books", "art", "theatre", "architecture", "fashion", "history", "museums", "language"),
        ("exhibition", "novel", "artist", "gallery", "designer", "heritage", "poet", "stage", "collection",
         "author", "review", "style"),
    ),
    Category(
        "climate", 0.04,
        ("emissions", "wildfires", "renewables", "floods", "biodiversity", "heatwaves", "electric-cars",
         "climate-policy"),
        ("carbon", "drought", "solar", "wind", "storm", "warming", "targets", "wildlife", "coast", "pledge",
         "forest", "heat"),
    ),
    Category(
        "travel", 0.03,
        ("airlines", "destinations", "hotels", "rail", "cruises", "visas", "tourism", "food-travel"),
        ("flights", "beaches", "routes", "itinerary", "holiday", "trip", "island", "city", "fares",
         "passengers", "resort", "peak"),
    ),
)  # fmt: skip

# Words any headline may use besides its category's.
COMMON_WORDS: Final = ("new", "report", "says", "after", "amid", "week", "first", "why", "how", "could",
                       "plan", "big")  # fmt: skip

# Fictional outlets by home region, largest first within each (their shares fall off as a Zipf law).
_OUTLETS: Final = {
    "us": ("The Daily Ledger", "Metro Courier", "Capitol Wire", "Pacific Herald", "Lakeside Tribune",
           "Frontier Post", "Empire Dispatch", "Gulf Coast Times", "Prairie Gazette", "Harbor Review"),
    "eu": ("Europa Observer", "Rhine Chronicle", "Baltic Bulletin", "Iberia Diario", "Alpine Zeitung",
           "Nordic Signal", "Danube Press", "Lumiere Quotidien", "Adriatic Voice"),
    "in": ("Deccan Standard", "Ganges Mail", "Konkan Chronicle", "Bengal Express", "Punjab Sentinel"),
    "uk": ("Thames Gazette", "Northern Clarion", "Albion Record", "Pennine Post", "Severn Sentinel"),
    "br": ("Diario Atlantico", "Correio Verde", "Jornal da Serra"),
    "jp": ("Kanto Daily", "Sakura Times", "Osaka Wire"),
    "africa": ("Savanna Herald", "Lagos Ledger", "Cape Meridian"),
    "au": ("Southern Cross Courier", "Outback Observer"),
}  # fmt: skip

# Free, metered and subscription outlets, cycled through each region's list.
_PAYWALL_RATES: Final = (0.6, 0.0, 0.3, 0.85, 0.05)

PUBLISHERS: Final = tuple(
    Publisher(name, home, _PAYWALL_RATES[rank % len(_PAYWALL_RATES)])
    for home, names in _OUTLETS.items()
    for rank, name in enumerate(names)
)

# A headline's local hour: quiet at night, a morning peak and an evening shoulder.
DIURNAL: Final = (1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 3.5, 3.8, 3.5, 3.2,
                  3.0, 3.0, 2.8, 2.7, 2.8, 3.0, 3.0, 2.6, 2.2, 1.8, 1.5, 1.2)  # fmt: skip
WEEKEND_RATE: Final = 0.65  # fewer articles on Saturdays and Sundays
