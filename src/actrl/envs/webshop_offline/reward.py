"""WebShop's purchase reward: attribute, option, price and type matching (Yao et al. 2022, eq. 1).

    r = r_type * (|U_att ∩ Y_att| + |U_opt ∩ Y_opt| + 1[y_price <= u_price]) / (|U_att| + |U_opt| + 1)

U is the goal (instruction attributes, options, price cap), Y the bought product with the options
clicked. Implemented from the paper's formula and the behaviour of `web_agent_site/engine/goal.py`
(fuzzy token-set matching above 85, exact matching for sizes, text fallbacks to title, bullet
points and description; r_type from query/category/title agreement).

Choices:
1. Fuzzy matching uses `rapidfuzz.fuzz.token_set_ratio` (the algorithm of `thefuzz`, which
   WebShop uses).
2. The type score compares the products' `type_words` (see catalog.py) instead of nouns from
   spaCy's en_core_web_lg, which is not installable from a package registry.
3. Colours are compared lower-cased and stripped, without WebShop's colour-synonym table.
"""

from __future__ import annotations

from typing import Any

from rapidfuzz import fuzz

EXACT_MATCH_OPTS = ("size",)


def type_reward(product: dict[str, Any], goal: dict[str, Any]) -> float:
    """1 for the same kind of product; 0.5, 0.1 or 0 as the match weakens (WebShop's r_type).

    >>> type_reward({"query": "shampoo", "product_category": "a › b", "type_words": ["shampoo"]},
    ...             {"query": "shampoo", "product_category": "a › b", "type_words": ["shampoo"]})
    1.0
    """
    query_match = product["query"] == goal["query"]
    categories = {c.strip() for c in product["product_category"].split("›")}
    category_match = len(categories & {c.strip() for c in goal["product_category"].split("›")}) >= 2
    desired = set(goal.get("type_words", []))
    title_score = len(set(product.get("type_words", [])) & desired) / len(desired) if desired else 0.2
    r_type = 1.0 if (query_match or category_match or title_score > 0.2) else 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return r_type


def _in_text(value: str, product: dict[str, Any]) -> bool:
    text = " ".join(
        [product["Title"], " ".join(product.get("BulletPoints", [])), product.get("Description", "")]
    ).lower()
    return value in text


def attribute_matches(product: dict[str, Any], goal: dict[str, Any]) -> int:
    matches = 0
    for g_attr in goal["attributes"]:
        if any(
            fuzz.token_set_ratio(p_attr, g_attr) > 85 for p_attr in product.get("Attributes", [])
        ) or _in_text(g_attr, product):
            matches += 1
    return matches


def option_matches(product: dict[str, Any], goal_options: list[str], chosen: dict[str, str]) -> int:
    goal_values = [str(v).strip().lower() for v in goal_options]
    matches = 0
    for name, value in chosen.items():
        value = str(value).strip().lower()
        if name.lower() in EXACT_MATCH_OPTS:
            hit = value in goal_values
        else:
            hit = any(fuzz.token_set_ratio(g, value) > 85 for g in goal_values)
        if hit or _in_text(value, product):
            matches += 1
    return matches


def get_reward(
    product: dict[str, Any], goal: dict[str, Any], price: float, options: dict[str, str]
) -> tuple[float, dict[str, Any]]:
    """(reward in [0, 1], its parts) for buying `product` at `price` with `options` clicked."""
    goal_options = (
        list(goal["goal_options"].values())
        if isinstance(goal["goal_options"], dict)
        else list(goal["goal_options"])
    )
    r_price = price <= goal["price_upper"]
    n_att = attribute_matches(product, goal)
    n_opt = option_matches(product, goal_options, options)
    denom = len(goal["attributes"]) + len(goal_options) + 1
    r_type = type_reward(product, goal)
    reward = (n_att + n_opt + int(r_price)) / denom * r_type
    info = {
        "r_type": r_type,
        "r_att": n_att / max(1, len(goal["attributes"])),
        "r_price": r_price,
        "r_option": n_opt / len(goal_options) if goal_options else None,
    }
    return reward, info
