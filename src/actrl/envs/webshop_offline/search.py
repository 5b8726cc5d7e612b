"""Ranked product search for the offline WebShop: BM25 (the `rank-bm25` library) over product text.

WebShop ranks with a Lucene BM25 index (pyserini) over each product's text and returns the top 50;
here `rank_bm25.BM25Okapi` plays Lucene's part on the same fields.

Choices:
1. Indexed text: title, query, category path, attributes, bullet points, description and option
   values; tokens are lower-case alphanumeric runs (Lucene's standard analyzer, without stemming).
2. Only products sharing at least one query token are returned (Lucene returns matching documents
   only), at most `SEARCH_RETURN_N` = 50, ties broken by catalog order so rankings are reproducible.
"""

from __future__ import annotations

import re
from typing import Any

from rank_bm25 import BM25Okapi

SEARCH_RETURN_N = 50  # WebShop's engine.SEARCH_RETURN_N
_TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lower-case alphanumeric runs.

    >>> tokenize("Sulfate-Free Shampoo, 16 fl oz")
    ['sulfate', 'free', 'shampoo', '16', 'fl', 'oz']
    """
    return _TOKEN.findall(text.lower())


def product_text(product: dict[str, Any]) -> str:
    options = " ".join(v for values in product.get("options", {}).values() for v in values)
    return " ".join(
        [
            product["Title"],
            product.get("query", ""),
            product.get("product_category", ""),
            " ".join(product.get("Attributes", [])),
            " ".join(product.get("BulletPoints", [])),
            product.get("Description", ""),
            options,
        ]
    )


class ProductSearch:
    """BM25 over a product list; `search(query)` returns asins, best first."""

    def __init__(self, products: list[dict[str, Any]]) -> None:
        self.asins = [p["asin"] for p in products]
        self._docs = [tokenize(product_text(p)) for p in products]
        self._vocab = [set(d) for d in self._docs]
        self.bm25 = BM25Okapi(self._docs)

    def search(self, query: str, k: int = SEARCH_RETURN_N) -> list[str]:
        tokens = tokenize(query)
        if not tokens:
            return []
        scores = self.bm25.get_scores(tokens)
        wanted = set(tokens)
        hits = [i for i in range(len(self.asins)) if self._vocab[i] & wanted]
        hits.sort(key=lambda i: (-scores[i], i))
        return [self.asins[i] for i in hits[:k]]
