"""Products and instruction goals for the offline WebShop: generated from a seed, or WebShop's own files.

    from actrl.envs.webshop_offline.catalog import generate_catalog, load_webshop_catalog
    catalog = generate_catalog(seed=0)                       # reproducible, no download
    catalog = load_webshop_catalog("WebShop/data")           # items_shuffle*.json + items_ins_v2*.json (+ items_human_ins.json)

Products and goals are plain dicts with WebShop's field names (`asin`, `Title`, `query`,
`product_category`, `Attributes`, `options`, `pricing`, ... and for goals `instruction_text`,
`attributes`, `goal_options`, `price_upper`), so the same reward code reads both kinds.

Choices (the generated catalog is ours; the loader follows WebShop's engine.load_products):
1. Generated catalog: 5 WebShop categories x 4 product types each; every type has an attribute
   pool and option schema, and `products_per_type` siblings that differ in attributes, options
   and price, so a search returns near misses next to the right product.
2. Generated goals name 1-3 attributes of their product, one value per option and a price cap
   drawn like WebShop's human goals (2 of the first 4 multiples of $10 above the price, the
   larger one), in a human-goal-like sentence; goal order is fixed by the seed.
3. `type_words` (the nouns of the product type) stand in for WebShop's spaCy noun parse in the
   type reward; for loaded WebShop products they are the title's non-stopword words.
4. Loaded WebShop goals follow `get_human_goals` (human instructions when present, else the
   synthetic ones), with the price draws and the goal shuffle made from `seed`, not the global RNG.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

PRICE_RANGE = [10.0 * i for i in range(1, 100)]  # WebShop's price caps
STOPWORDS = frozenset(
    "a an and are as at be by for from has have i in is it its me my need of on or that the this to "
    "with you your im i'm looking want find buy".split()
)

# category -> product category path, types: (type name, type words, attributes, options)
_CATEGORIES: dict[str, tuple[str, list[tuple[str, list[str], list[str], dict[str, list[str]]]]]] = {
    "beauty": (
        "Beauty & Personal Care › Hair Care",
        [
            (
                "shampoo",
                ["shampoo"],
                [
                    "sulfate free",
                    "paraben free",
                    "for dry hair",
                    "natural ingredients",
                    "long lasting",
                    "cruelty free",
                ],
                {
                    "size": ["8 fl oz", "16 fl oz", "32 fl oz"],
                    "scent": ["argan oil", "coconut", "lavender", "unscented"],
                },
            ),
            (
                "hair dryer",
                ["hair", "dryer"],
                ["ionic", "lightweight", "fast drying", "low noise", "travel size", "ceramic"],
                {"color": ["black", "rose gold", "white"]},
            ),
            (
                "face moisturizer",
                ["face", "moisturizer"],
                ["oil free", "fragrance free", "for sensitive skin", "spf 30", "anti aging", "non greasy"],
                {"size": ["1.7 oz", "3.4 oz"]},
            ),
            (
                "nail polish",
                ["nail", "polish"],
                ["quick dry", "long lasting", "non toxic", "vegan", "glossy finish", "chip resistant"],
                {"color": ["red", "nude", "pink", "navy blue", "black"]},
            ),
        ],
    ),
    "grocery": (
        "Grocery & Gourmet Food › Snack Foods",
        [
            (
                "protein bar",
                ["protein", "bar"],
                ["gluten free", "low sugar", "high protein", "keto friendly", "non gmo", "plant based"],
                {
                    "flavor": ["chocolate", "peanut butter", "vanilla", "berry"],
                    "size": ["12 count", "24 count"],
                },
            ),
            (
                "green tea",
                ["green", "tea"],
                ["organic", "caffeine free", "non gmo", "individually wrapped", "sugar free", "decaf"],
                {"size": ["20 bags", "50 bags", "100 bags"]},
            ),
            (
                "trail mix",
                ["trail", "mix"],
                ["gluten free", "low sodium", "resealable bag", "roasted", "no artificial flavors", "vegan"],
                {"size": ["8 ounce", "16 ounce", "pack of 6"]},
            ),
            (
                "coffee beans",
                ["coffee", "beans"],
                ["whole bean", "dark roast", "fair trade", "organic", "low acid", "single origin"],
                {"size": ["12 ounce", "2 pound"]},
            ),
        ],
    ),
    "fashion": (
        "Clothing, Shoes & Jewelry › Men › Clothing",
        [
            (
                "running shoes",
                ["running", "shoes"],
                ["slip resistant", "breathable", "rubber sole", "lightweight", "memory foam", "wide width"],
                {"color": ["black", "white", "grey", "navy blue"], "size": ["8", "9", "10", "11", "12"]},
            ),
            (
                "rain jacket",
                ["rain", "jacket"],
                ["waterproof", "hooded", "packable", "machine wash", "windproof", "zip pockets"],
                {"color": ["black", "olive green", "red"], "size": ["small", "medium", "large", "x-large"]},
            ),
            (
                "cotton t-shirt",
                ["cotton", "shirt"],
                ["short sleeve", "crew neck", "machine wash", "regular fit", "soft fabric", "tagless"],
                {
                    "color": ["white", "black", "heather grey", "navy blue"],
                    "size": ["small", "medium", "large", "x-large"],
                },
            ),
            (
                "wool socks",
                ["wool", "socks"],
                ["moisture wicking", "cushioned", "merino wool", "anti odor", "arch support", "crew length"],
                {"color": ["grey", "black", "brown"], "size": ["medium", "large"]},
            ),
        ],
    ),
    "furniture": (
        "Home & Kitchen › Furniture › Living Room Furniture",
        [
            (
                "coffee table",
                ["coffee", "table"],
                ["solid wood", "easy assembly", "storage shelf", "mid century", "rustic", "metal frame"],
                {"color": ["walnut", "black", "white oak"]},
            ),
            (
                "office chair",
                ["office", "chair"],
                [
                    "ergonomic",
                    "lumbar support",
                    "adjustable height",
                    "mesh back",
                    "swivel",
                    "padded armrests",
                ],
                {"color": ["black", "grey", "blue"]},
            ),
            (
                "bookshelf",
                ["bookshelf"],
                ["5 tier", "easy assembly", "space saving", "industrial", "wall mounted", "sturdy"],
                {"color": ["brown", "black", "white"]},
            ),
            (
                "floor lamp",
                ["floor", "lamp"],
                ["dimmable", "led", "remote control", "energy efficient", "modern", "adjustable"],
                {"color": ["black", "gold", "silver"]},
            ),
        ],
    ),
    "electronics": (
        "Electronics › Computers & Accessories",
        [
            (
                "wireless earbuds",
                ["wireless", "earbuds"],
                [
                    "noise cancelling",
                    "bluetooth 5.0",
                    "long battery life",
                    "water resistant",
                    "charging case",
                    "touch control",
                ],
                {"color": ["black", "white", "blue"]},
            ),
            (
                "usb c cable",
                ["usb", "cable"],
                ["fast charging", "braided", "high speed", "durable", "data transfer", "pack of 2"],
                {"size": ["3 ft", "6 ft", "10 ft"], "color": ["black", "white"]},
            ),
            (
                "phone case",
                ["phone", "case"],
                [
                    "shockproof",
                    "slim fit",
                    "wireless charging compatible",
                    "clear",
                    "kickstand",
                    "drop protection",
                ],
                {"color": ["clear", "black", "purple", "green"]},
            ),
            (
                "laptop stand",
                ["laptop", "stand"],
                ["adjustable height", "aluminum", "foldable", "portable", "ventilated", "non slip"],
                {"color": ["silver", "space grey"]},
            ),
        ],
    ),
}
_BRANDS = [
    "Lumora",
    "Verdant",
    "Northpeak",
    "Aurelia",
    "Kestrel",
    "Mistral",
    "Obsidian",
    "Solace",
    "Tidewell",
    "Zephyra",
]
_TEMPLATES = [
    "i need {attrs} {type}",
    "i am looking for {attrs} {type}",
    "i'm looking for a {type} that is {attrs}",
    "find me {attrs} {type}",
]


@dataclass
class Catalog:
    """Products by asin, their prices, and the instruction goals (index = WebShop goal index)."""

    products: list[dict[str, Any]]
    goals: list[dict[str, Any]]
    source: str
    prices: dict[str, float] = field(default_factory=dict)
    by_asin: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_asin = {p["asin"]: p for p in self.products}
        if not self.prices:
            self.prices = {p["asin"]: float(p["pricing"][0]) for p in self.products}


def title_type_words(title: str) -> list[str]:
    """Content words of a title: the stand-in for WebShop's spaCy noun parse (choice 3)."""
    return [w for w in re.findall(r"[a-z0-9]+", title.lower()) if w not in STOPWORDS and not w.isdigit()]


def _asin(rng: random.Random) -> str:
    return "B0" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(8))


def price_cap(price: float, rng: random.Random) -> float:
    """WebShop's human-goal price cap: the larger of 2 draws among the first 4 multiples of $10 above."""
    above = [p for p in PRICE_RANGE if p > price][:4]
    return sorted(rng.sample(above, 2))[1] if len(above) >= 2 else 1000000.0


def _instruction(
    rng: random.Random, type_name: str, attrs: list[str], options: dict[str, str], cap: float
) -> str:
    text = rng.choice(_TEMPLATES).format(attrs=" and ".join(attrs), type=type_name)
    if options:
        text += " with " + ", and ".join(f"{k}: {v}" for k, v in options.items())
    return text + f", and price lower than {cap:.2f} dollars"


def generate_catalog(seed: int = 0, products_per_type: int = 12, num_goals: int = 2000) -> Catalog:
    """A reproducible catalog (5 categories x 4 types x `products_per_type`) and `num_goals` goals."""
    rng = random.Random(seed)
    products: list[dict[str, Any]] = []
    asins: set[str] = set()
    for category, (path, types) in _CATEGORIES.items():
        for type_name, type_words, attr_pool, option_schema in types:
            for _ in range(products_per_type):
                asin = _asin(rng)
                while asin in asins:
                    asin = _asin(rng)
                asins.add(asin)
                attrs = sorted(rng.sample(attr_pool, rng.randint(2, 4)))
                options = {k: sorted(rng.sample(v, rng.randint(1, len(v)))) for k, v in option_schema.items()}
                price = round(rng.uniform(5, 150), 2)
                brand = rng.choice(_BRANDS)
                title = f"{brand} {type_name.title()} - {', '.join(a.title() for a in attrs)}"
                products.append(
                    {
                        "asin": asin,
                        "name": title,
                        "Title": title,
                        "category": category,
                        "query": type_name,
                        "product_category": f"{path} › {type_name.title()}",
                        "Description": f"The {brand} {type_name} is {', '.join(attrs)}. Made to last, backed by our guarantee.",
                        "BulletPoints": [a.capitalize() for a in attrs] + [f"By {brand}"],
                        "Attributes": attrs,
                        "options": options,
                        "pricing": [price],
                        "Price": f"${price:.2f}",
                        "Rating": "N.A.",
                        "Reviews": [],
                        "type_words": list(type_words),
                        "type_name": type_name,
                    }
                )
    goals = []
    for _ in range(num_goals):
        product = rng.choice(products)
        attrs = sorted(rng.sample(product["Attributes"], rng.randint(1, min(3, len(product["Attributes"])))))
        goal_options = {k: rng.choice(v) for k, v in sorted(product["options"].items())}
        cap = price_cap(product["pricing"][0], rng)
        goals.append(
            {
                "asin": product["asin"],
                "category": product["category"],
                "query": product["query"],
                "name": product["type_name"],
                "product_category": product["product_category"],
                "instruction_text": _instruction(rng, product["type_name"], attrs, goal_options, cap),
                "attributes": attrs,
                "price_upper": cap,
                "goal_options": goal_options,
                "weight": 1,
                "type_words": product["type_words"],
            }
        )
    return Catalog(products=products, goals=goals, source=f"generated (seed {seed})")


# ----------------------------------------------------------------------------- WebShop's own files


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        from actrl.envs.base import EnvError

        raise EnvError(f"{path}: not valid JSON (line {e.lineno}): re-download WebShop's data") from None


def _pricing(raw: Any) -> list[float]:
    if not raw:
        return [100.0]
    values = [
        float(Decimal(re.sub(r"[^\d.]", "", p))) for p in str(raw).split("$")[1:] if re.sub(r"[^\d.]", "", p)
    ]
    return values[:2] or [100.0]


def load_webshop_catalog(data_dir: str | Path, num_products: int | None = None, seed: int = 233) -> Catalog:
    """Products and goals from WebShop's data directory (`setup.sh -d small|all` downloads it)."""
    from actrl.envs.base import EnvUnavailableError

    data_dir = Path(data_dir)
    items = sorted(data_dir.glob("items_shuffle*.json"))
    attrs_files = sorted(data_dir.glob("items_ins_v2*.json"))
    if not items or not attrs_files:
        raise EnvUnavailableError(
            f"{data_dir}: expected WebShop's items_shuffle*.json and items_ins_v2*.json "
            "(run `./setup.sh -d small` in a WebShop checkout, then pass its data/ directory)"
        )
    raw = _read_json(items[0])[: num_products or None]
    attributes = _read_json(attrs_files[0])
    human_path = data_dir / "items_human_ins.json"
    human = _read_json(human_path) if human_path.exists() else {}
    products, seen = [], set()
    for p in raw:
        asin = p.get("asin", "nan")
        if asin == "nan" or len(asin) > 10 or asin in seen:
            continue
        seen.add(asin)
        options = {
            name.lower(): [o["value"].strip().replace("/", " | ").lower() for o in contents]
            for name, contents in (p.get("customization_options") or {}).items()
            if contents is not None
        }
        pricing = _pricing(p.get("pricing"))
        bullets = p.get("small_description")
        products.append(
            {
                "asin": asin,
                "name": p["name"],
                "Title": p["name"],
                "category": p["category"],
                "query": p["query"].lower().strip(),
                "product_category": p["product_category"],
                "Description": p.get("full_description") or "",
                "BulletPoints": bullets if isinstance(bullets, list) else [bullets or ""],
                "Attributes": attributes.get(asin, {}).get("attributes", ["DUMMY_ATTR"]),
                "options": options,
                "pricing": pricing,
                "Price": f"${pricing[0]}" if len(pricing) == 1 else f"${pricing[0]} to ${pricing[1]}",
                "Rating": "N.A.",
                "Reviews": [],
                "type_words": title_type_words(p["name"]),
            }
        )
    rng = random.Random(seed)
    prices = {
        p["asin"]: (p["pricing"][0] if len(p["pricing"]) == 1 else rng.uniform(*p["pricing"][:2]))
        for p in products
    }
    goals = []
    for p in products:
        instructions = human.get(p["asin"], [])
        if not human:  # synthetic goals (WebShop's get_synthetic_goals without the option cross product)
            ins = attributes.get(p["asin"], {})
            if ins.get("instruction"):
                instructions = [
                    {
                        "instruction": ins["instruction"],
                        "instruction_attributes": ins.get("instruction_attributes", []),
                        "instruction_options": {},
                    }
                ]
        for ins in instructions:
            if not ins.get("instruction_attributes"):
                continue
            cap = price_cap(prices[p["asin"]], rng)
            suffix = f", and price lower than {cap:.2f} dollars" if cap < 1000000 else ""
            goals.append(
                {
                    "asin": p["asin"],
                    "category": p["category"],
                    "query": p["query"],
                    "name": p["name"],
                    "product_category": p["product_category"],
                    "instruction_text": ins["instruction"].strip(".") + suffix,
                    "attributes": ins["instruction_attributes"],
                    "price_upper": cap,
                    "goal_options": ins.get("instruction_options", {}),
                    "weight": 1,
                    "type_words": title_type_words(p["name"]),
                }
            )
    random.Random(seed).shuffle(goals)
    return Catalog(products=products, goals=goals, source=f"WebShop files in {data_dir}", prices=prices)
