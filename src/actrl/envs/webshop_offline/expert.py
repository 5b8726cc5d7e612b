"""The offline shop's scripted expert: search, page to the goal's product, click its options, buy.

WebShop's experts are human demonstrations; the offline shop has none, so this expert knows the
goal's product (it is the expert) and shops for it the way a careful human would.

Choices:
1. The query is the instruction up to ", and price lower than" (people search with the request);
   if BM25 does not rank the product in the top 50, the expert searches the product's title.
2. It clicks "next >" until the product's results page, then the product, then for every option
   of the product the value the goal names (exact, else the closest by token-set ratio), then
   "buy now". The sequence buys a product with reward 1 (tested on every goal of the test split).
"""

from __future__ import annotations

from rapidfuzz import fuzz

from actrl.envs.webshop_offline.shop import PRODUCT_WINDOW, OfflineShop


def search_query(instruction: str) -> str:
    """The instruction without its price clause.

    >>> search_query("i need red nail polish, and price lower than 20.00 dollars")
    'i need red nail polish'
    """
    return instruction.split(", and price lower than")[0].strip()


def _goal_values(goal_options) -> list[str]:
    values = goal_options.values() if isinstance(goal_options, dict) else goal_options
    return [str(v).strip().lower() for v in values]


def expert_actions(shop: OfflineShop, goal_index: int) -> list[str]:
    goal = shop.catalog.goals[goal_index]
    asin = goal["asin"]
    query = search_query(goal["instruction_text"])
    ranked = shop.search_engine.search(query)
    if asin not in ranked:
        query = shop.catalog.by_asin[asin]["Title"]
        ranked = shop.search_engine.search(query)
    actions = [f"search[{query}]"] + ["click[next >]"] * (ranked.index(asin) // PRODUCT_WINDOW)
    actions.append(f"click[{asin.lower()}]")
    wanted = _goal_values(goal["goal_options"])
    for values in shop.catalog.by_asin[asin]["options"].values():
        exact = [v for v in values if v in wanted]
        if exact:
            actions.append(f"click[{exact[0]}]")
        elif wanted:
            best = max(values, key=lambda v: max(fuzz.token_set_ratio(v, w) for w in wanted))
            if max(fuzz.token_set_ratio(best, w) for w in wanted) > 85:
                actions.append(f"click[{best}]")
    actions.append("click[buy now]")
    return actions
