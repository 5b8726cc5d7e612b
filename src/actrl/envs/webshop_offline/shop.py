"""The offline WebShop site: WebShop's pages and routes, rendered as HTML, in-process or over HTTP.

    shop = OfflineShop(generate_catalog(seed=0))
    html, path = shop.get("/fixed_0")                          # the search page of goal 0
    with serve(shop) as url: ...                                # the same site on http://127.0.0.1:<port>

Page flow and URLs follow `web_agent_site/app.py`: `/<session>` (search page; POST search_query
redirects to results), `/search_results/<session>/<keywords>/<page>`,
`/item_page/<session>/<asin>/<keywords>/<page>/<options>`,
`/item_sub_page/<session>/<asin>/<keywords>/<page>/<sub_page>/<options>`,
`/done/<session>/<asin>/<options>`. A session named `fixed_<i>` shops for goal i. Pages carry
WebShop's markup hooks (`#search_input`, `.btn` buttons in forms, `a.product-link`, radio inputs
with `data-url`), so `actrl.envs.webshop` parses them exactly as it parses the real server's pages.

Choices:
1. Stateless: every page is a function of its URL (keywords, page, asin and chosen options ride in
   the path, as in WebShop), so the in-process and HTTP sites behave identically.
2. Page texts follow the WebShop observations commonly shown in papers ("Page 1 (Total results:
   N)", "< Prev", "Price: $x", "Your score (min 0.0, max 1.0)").
"""

from __future__ import annotations

import ast
import contextlib
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, unquote
from wsgiref.simple_server import WSGIRequestHandler, make_server

from jinja2 import Environment

from actrl.envs.webshop_offline.catalog import Catalog
from actrl.envs.webshop_offline.reward import get_reward
from actrl.envs.webshop_offline.search import ProductSearch

PRODUCT_WINDOW = 10  # results per page, as in WebShop
SUB_PAGES = ("Description", "Features", "Reviews")

_HEAD = "<!DOCTYPE html><html><head><title>WebShop</title></head><body>"
_INSTRUCTION = '<div id="instruction-text"><h4>Instruction: <br>{{ instruction }}</h4></div>'
_BACK = '<form method="post" action="{{ home }}"><button type="submit" class="btn btn-success">Back to Search</button></form>'
TEMPLATES = {
    "search": _HEAD
    + '<div id="logo"><h2>WebShop</h2></div>'
    + _INSTRUCTION
    + '<form method="post" action="{{ home }}"><input id="search_input" type="text" name="search_query">'
    + '<button type="submit" class="btn btn-success">Search</button></form></body></html>',
    "results": _HEAD
    + _INSTRUCTION
    + _BACK
    + "<p>Page {{ page }} (Total results: {{ total }})</p>"
    + '{% if prev_url %}<form method="post" action="{{ prev_url }}"><button type="submit" class="btn btn-primary">&lt; Prev</button></form>{% endif %}'
    + '{% if next_url %}<form method="post" action="{{ next_url }}"><button type="submit" class="btn btn-primary">Next &gt;</button></form>{% endif %}'
    + '{% for p in products %}<div class="grid-item"><h4 class="product-asin"><a class="product-link" href="{{ p.url }}">{{ p.asin }}</a></h4>'
    + '<h4 class="product-title">{{ p.title }}</h4><h5 class="product-price">{{ p.price }}</h5></div>{% endfor %}</body></html>',
    "item": _HEAD
    + _INSTRUCTION
    + _BACK
    + '<form method="post" action="{{ results_url }}"><button type="submit" class="btn btn-primary">&lt; Prev</button></form>'
    + "{% for name, values in options %}<div><h4>{{ name }}</h4>{% for v in values %}"
    + '<input type="radio" id="radio_{{ name }}{{ loop.index0 }}" name="{{ name }}" value="{{ v.value }}" data-url="{{ v.url }}"{% if v.checked %} checked{% endif %}>'
    + '<label for="radio_{{ name }}{{ loop.index0 }}">{{ v.value }}</label>{% endfor %}</div>{% endfor %}'
    + "<h2>{{ title }}</h2><h4>Price: {{ price }}</h4><h4>Rating: {{ rating }}</h4>"
    + '{% for sub, url in sub_pages %}<form method="post" action="{{ url }}"><button class="btn btn-primary" type="submit">{{ sub }}</button></form>{% endfor %}'
    + '<form method="post" action="{{ buy_url }}"><button type="submit" class="btn btn-lg purchase">Buy Now</button></form></body></html>',
    "sub": _HEAD
    + _INSTRUCTION
    + _BACK
    + '<form method="post" action="{{ item_url }}"><button type="submit" class="btn btn-primary">&lt; Prev</button></form>'
    + "{% for line in lines %}<p>{{ line }}</p>{% endfor %}</body></html>",
    "done": _HEAD
    + '<div id="thankyou"><h1>Thank you for shopping with us!</h1></div>'
    + '<div id="stats"><h3 id="reward">Your score (min 0.0, max 1.0)<pre>{{ reward }}</pre></h3></div></body></html>',
}
_JINJA = Environment(autoescape=True)
_COMPILED = {name: _JINJA.from_string(text) for name, text in TEMPLATES.items()}


class NotFound(KeyError):
    """A path the site does not serve (unknown route, goal index, or product)."""


def _seg(value: Any) -> str:
    return quote(str(value), safe="")


class OfflineShop:
    """WebShop's site over a `Catalog`: routes -> HTML, reward computed on the done page."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.search_engine = ProductSearch(catalog.products)

    # ------------------------------------------------------------------ routing
    def goal(self, session: str) -> dict[str, Any]:
        if (
            not session.startswith("fixed_")
            or not session[6:].isdigit()
            or int(session[6:]) >= len(self.catalog.goals)
        ):
            raise NotFound(
                f"no goal for session '{session}' (use fixed_0 .. fixed_{len(self.catalog.goals) - 1})"
            )
        return self.catalog.goals[int(session[6:])]

    def get(self, path: str) -> tuple[str, str]:
        return self.handle("GET", path)

    def handle(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[str, str]:
        """(html, final path) for a request; a search POST redirects to its results page."""
        parts = [unquote(p) for p in path.split("?")[0].strip("/").split("/")]
        route, args = (parts[0], parts[1:]) if len(parts) > 1 else ("index", parts)
        if route == "index" and len(args) == 1:
            session = args[0]
            self.goal(session)
            if method == "POST" and form and form.get("search_query"):
                keywords = form["search_query"].lower().split()
                return self.handle("GET", f"/search_results/{_seg(session)}/{_seg(keywords)}/1")
            return self.search_page(session), path
        pages = {
            "search_results": (self.results_page, 3),
            "item_page": (self.item_page, 5),
            "item_sub_page": (self.sub_page, 6),
            "done": (self.done_page, 3),
        }
        if route not in pages or len(args) != pages[route][1]:
            raise NotFound(f"no page at {path}")
        try:
            return pages[route][0](*args), path
        except (ValueError, SyntaxError) as e:
            raise NotFound(f"malformed path {path}: {e}") from None

    # ------------------------------------------------------------------ pages
    def _product(self, asin: str) -> dict[str, Any]:
        if asin not in self.catalog.by_asin:
            raise NotFound(f"no product {asin}")
        return self.catalog.by_asin[asin]

    def search_page(self, session: str) -> str:
        return _COMPILED["search"].render(
            instruction=self.goal(session)["instruction_text"], home=f"/{_seg(session)}"
        )

    def results_page(self, session: str, keywords: str, page: str) -> str:
        words = ast.literal_eval(keywords) if keywords.startswith("[") else [keywords]
        page_n = int(page)
        asins = self.search_engine.search(" ".join(words))
        shown = asins[(page_n - 1) * PRODUCT_WINDOW : page_n * PRODUCT_WINDOW]
        base = f"/search_results/{_seg(session)}/{_seg(words)}"
        products = [
            {
                "asin": a,
                "title": self._product(a)["Title"],
                "price": self._product(a)["Price"],
                "url": f"/item_page/{_seg(session)}/{a}/{_seg(words)}/{page_n}/{_seg({})}",
            }
            for a in shown
        ]
        return _COMPILED["results"].render(
            instruction=self.goal(session)["instruction_text"],
            home=f"/{_seg(session)}",
            page=page_n,
            total=len(asins),
            prev_url=f"{base}/{page_n - 1}" if page_n > 1 else None,
            next_url=f"{base}/{page_n + 1}" if page_n * PRODUCT_WINDOW < len(asins) else None,
            products=products,
        )

    def item_page(self, session: str, asin: str, keywords: str, page: str, options: str) -> str:
        product, chosen = self._product(asin), ast.literal_eval(options)
        item = f"/item_page/{_seg(session)}/{asin}/{_seg(keywords)}/{page}"
        option_rows = [
            (
                name,
                [
                    {
                        "value": v,
                        "checked": chosen.get(name) == v,
                        "url": f"{item}/{_seg({**chosen, name: v})}",
                    }
                    for v in values
                ],
            )
            for name, values in product["options"].items()
        ]
        sub = f"/item_sub_page/{_seg(session)}/{asin}/{_seg(keywords)}/{page}"
        return _COMPILED["item"].render(
            instruction=self.goal(session)["instruction_text"],
            home=f"/{_seg(session)}",
            results_url=f"/search_results/{_seg(session)}/{_seg(keywords)}/{page}",
            options=option_rows,
            title=product["Title"],
            price=product["Price"],
            rating=product.get("Rating", "N.A."),
            sub_pages=[(s, f"{sub}/{s}/{_seg(chosen)}") for s in SUB_PAGES],
            buy_url=f"/done/{_seg(session)}/{asin}/{_seg(chosen)}",
        )

    def sub_page(self, session: str, asin: str, keywords: str, page: str, sub_page: str, options: str) -> str:
        product = self._product(asin)
        lines = {
            "Description": [product.get("Description", "")],
            "Features": product.get("BulletPoints", []),
            "Reviews": [r.get("body", "") for r in product.get("Reviews", [])] or ["No reviews yet."],
        }.get(sub_page)
        if lines is None:
            raise NotFound(f"no sub page '{sub_page}'")
        return _COMPILED["sub"].render(
            instruction=self.goal(session)["instruction_text"],
            home=f"/{_seg(session)}",
            lines=lines,
            item_url=f"/item_page/{_seg(session)}/{asin}/{_seg(keywords)}/{page}/{_seg(options)}",
        )

    def purchase(self, session: str, asin: str, options: dict[str, str]) -> tuple[float, dict[str, Any]]:
        """WebShop's reward for buying `asin` with `options` under the session's goal."""
        return get_reward(self._product(asin), self.goal(session), self.catalog.prices[asin], options)

    def done_page(self, session: str, asin: str, options: str) -> str:
        reward, _ = self.purchase(session, asin, ast.literal_eval(options))
        return _COMPILED["done"].render(reward=reward)

    # ------------------------------------------------------------------ WSGI
    def wsgi(self, environ: dict[str, Any], start_response) -> list[bytes]:
        method = environ["REQUEST_METHOD"]
        form = {}
        if method == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(size).decode() if size else ""
            form = {k: v[0] for k, v in parse_qs(body).items()}
        raw_path = (environ.get("RAW_URI") or quote(environ.get("PATH_INFO", "/"))).split("?")[0]
        try:
            html, path = self.handle(method, raw_path, form)
        except NotFound as e:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [str(e).encode()]
        if path != raw_path:
            start_response("302 Found", [("Location", path)])
            return [b""]
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [html.encode()]


class _QuietHandler(WSGIRequestHandler):
    def get_environ(self) -> dict[str, Any]:
        env = super().get_environ()
        env["RAW_URI"] = self.path  # PATH_INFO is unquoted, which would merge quoted '/' into the path
        return env

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve(shop: OfflineShop, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve the shop over HTTP on the loopback interface for the duration of the block; yields its URL."""
    server = make_server(host, port, shop.wsgi, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
