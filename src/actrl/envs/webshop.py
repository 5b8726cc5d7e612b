"""WebShop: the paper's web-shopping benchmark, over the real site or the offline shop.

    # real WebShop served by its Flask app (./run_dev.sh in a WebShop checkout), by URL:
    actrl eval agent --env webshop --split test ... env_kwargs.server_url=http://127.0.0.1:3000
    # real WebShop installed in this environment (web_agent_site importable): leave out server_url
    # offline shop (no download):
    actrl collect --env webshop_offline --split train --num 100 --out runs/ws/experts.jsonl
    (setup steps: docs/benchmarks.md)

Three sites behind one adapter:
- `web_agent_site` installed: its own text environment (`WebAgentTextEnv`, observation_mode="text");
- a running WebShop server (`server_url`): pages fetched over HTTP, parsed into WebShop's text
  observation (visible texts joined by " [SEP] ") and its clickables (buttons, product links,
  option radios), following the links each page carries;
- the offline shop (`actrl.envs.webshop_offline`), through the same page parser as the server.
Actions are WebShop's: `search[query]` and `click[button]`. The reward (0-1) arrives when
"buy now" is clicked and ends the episode; score = 100 x reward, success (won) = reward 1.

Choices:
1. Goal-index splits as in WebShop's baselines: test 0-499, dev 500-1499, train the rest.
   Task.name is "goal" and Task.variation the goal index (the session `fixed_<i>`).
2. `admissible_actions()` lists `search[<query>]` on pages with a search bar (any non-empty query
   is accepted) and `click[x]` for every clickable except the search button.
3. As in WebAgentTextEnv, a search is accepted on any page; an unknown click leaves the page
   unchanged (valid=False). Actions after the purchase change nothing.
4. Experts: the offline shop's scripted expert; for real WebShop, the human demonstrations
   (`human_demos` = il_trajs_finalized_images.jsonl with `human_goals` = human_goals.json), one
   per goal, matched to goals by instruction text as WebShop's imitation-learning code does.
5. `default_max_steps` = 15, the step limit of ReAct-style WebShop evaluations (the paper gives none).
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from actrl.envs.base import (
    EnvError,
    EnvUnavailableError,
    Observation,
    StepResult,
    Task,
    TextEnv,
    UnknownTaskError,
)

SPLIT_RANGES = {"test": (0, 500), "dev": (500, 1500)}  # train: 1500 .. num_goals - 1
WEBSHOP_HUMAN_GOALS = 12087  # instructions in WebShop's full data (items_human_ins.json)
SCORE_LABEL = "Your score (min 0.0, max 1.0)"
SETUP_HINT = (
    "install WebShop: git clone https://github.com/princeton-nlp/WebShop && cd WebShop && "
    "./setup.sh -d all && pip install -e . (or start its server and pass server_url=...)"
)
_IGNORED_TAGS = {"style", "script", "head", "title", "meta", "[document]"}


# ----------------------------------------------------------------------------- pages -> text, clickables


def _soup(html: str):
    from bs4 import BeautifulSoup

    return BeautifulSoup(html, "html.parser")


def visible_texts(html: str) -> list[str]:
    """The page's visible strings, stripped, as WebAgentTextEnv's text mode collects them."""
    from bs4.element import Comment

    out = []
    for t in _soup(html).find_all(string=True):
        if t.parent.name in _IGNORED_TAGS or isinstance(t, Comment) or not t.strip():
            continue
        out.append(t.strip())
    return out


def html_to_text(html: str) -> str:
    """WebShop's simple text observation: visible texts joined by ' [SEP] '."""
    return " [SEP] ".join(visible_texts(html))


@dataclass(frozen=True)
class Clickable:
    """Where clicking a page element leads: a form post (buttons) or a link (products, options)."""

    method: str
    path: str


def page_clickables(html: str) -> tuple[bool, dict[str, Clickable]]:
    """(has search bar, clickable name -> target) the way WebAgentTextEnv.get_available_actions names them."""
    soup = _soup(html)
    clickables: dict[str, Clickable] = {}
    for button in soup.find_all(class_="btn"):
        form = button.find_parent("form")
        if form is not None and form.get("action"):
            clickables[button.get_text().strip().lower()] = Clickable(
                form.get("method", "get").upper(), form["action"]
            )
    for link in soup.find_all(class_="product-link"):
        clickables[link.get_text().strip().lower()] = Clickable("GET", link["href"])
    for radio in soup.select('input[type="radio"]'):
        clickables[str(radio.get("value"))] = Clickable("GET", radio["data-url"])
    return soup.find(id="search_input") is not None, clickables


def page_reward(texts: list[str]) -> float | None:
    """The reward printed on the done page, else None."""
    if SCORE_LABEL in texts and texts.index(SCORE_LABEL) + 1 < len(texts):
        return float(texts[texts.index(SCORE_LABEL) + 1])
    return None


def parse_action(action: str) -> tuple[str, str | None]:
    """'click[Buy Now]' -> ('click', 'Buy Now'); WebShop's own pattern."""
    m = re.match(r"(.+)\[(.+)\]", action.strip())
    return (m.group(1).strip().lower(), m.group(2)) if m else (action.strip().lower(), None)


# ----------------------------------------------------------------------------- sites


class Transport(Protocol):
    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[str, str]:
        """(html, path after redirects)."""


class HttpTransport:
    """A WebShop server over HTTP (its Flask app, or `webshop_offline.shop.serve`)."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        import requests

        self.base_url, self.timeout = base_url.rstrip("/"), timeout
        self.session = requests.Session()

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[str, str]:
        import requests

        try:
            resp = self.session.request(method, self.base_url + path, data=form, timeout=self.timeout)
        except requests.RequestException as e:
            raise EnvUnavailableError(
                f"WebShop server at {self.base_url} is unreachable ({type(e).__name__}); start it in your "
                "WebShop checkout with `python -m web_agent_site.app` (or ./run_dev.sh), then retry"
            ) from None
        if resp.status_code != 200:
            raise EnvError(f"WebShop server answered {resp.status_code} for {path}: {resp.text[:200]}")
        return resp.text, resp.url[len(self.base_url) :]


class ShopTransport:
    """The offline shop, called in-process."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[str, str]:
        from actrl.envs.webshop_offline.shop import NotFound

        try:
            return self.shop.handle(method, path, form)
        except NotFound as e:
            raise UnknownTaskError(str(e)) from None


class UrlSite:
    """Plays WebShop's pages through a transport: search posts the query, clicks follow page links."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.session = ""
        self.html = ""

    def reset(self, goal: int) -> tuple[str, str]:
        self.session = f"fixed_{goal}"
        self.html, _ = self.transport.request("GET", f"/{self.session}")
        instruction = self._instruction()
        return html_to_text(self.html), instruction

    def _instruction(self) -> str:
        node = _soup(self.html).find(id="instruction-text")
        text = " ".join(node.get_text(" ").split()) if node else ""
        return text.split("Instruction:", 1)[-1].strip()

    def available(self) -> tuple[bool, list[str]]:
        has_search, clickables = page_clickables(self.html)
        return has_search, list(clickables)

    def step(self, action: str) -> tuple[str, float | None, bool]:
        name, arg = parse_action(action)
        if name == "search" and arg and arg.strip():
            self.html, _ = self.transport.request("POST", f"/{self.session}", {"search_query": arg.strip()})
        elif name == "click" and arg:
            clickables = page_clickables(self.html)[1]
            target = clickables.get(arg.strip().lower()) or clickables.get(arg.strip())
            if target is None or arg.strip().lower() == "search":
                return html_to_text(self.html), None, False
            self.html, _ = self.transport.request(target.method, target.path)
        else:
            return html_to_text(self.html), None, False
        return html_to_text(self.html), page_reward(visible_texts(self.html)), True


class TextEnvSite:
    """An installed `web_agent_site`: its WebAgentTextEnv in text mode."""

    def __init__(self, **kwargs: Any) -> None:
        try:
            from web_agent_site.envs import WebAgentTextEnv
        except ImportError as e:
            raise EnvUnavailableError(
                f"WebShop's web_agent_site is not importable ({e}): {SETUP_HINT}"
            ) from None
        try:
            self.env = WebAgentTextEnv(observation_mode="text", **kwargs)
        except FileNotFoundError as e:
            raise EnvUnavailableError(
                f"WebShop data missing ({e.filename}): run ./setup.sh -d all in the WebShop checkout"
            ) from None
        self.num_goals = len(self.env.server.goals)

    def reset(self, goal: int) -> tuple[str, str]:
        obs, _ = self.env.reset(session=goal)
        return obs, self.env.instruction_text.split("Instruction:", 1)[-1].strip()

    def available(self) -> tuple[bool, list[str]]:
        info = self.env.get_available_actions()
        return info["has_search_bar"], list(info["clickables"])

    def step(self, action: str) -> tuple[str, float | None, bool]:
        name, arg = parse_action(action)
        valid = bool(arg) and (
            name == "search"
            or (name == "click" and arg.lower() in self.available()[1] and arg.lower() != "search")
        )
        obs, reward, done, _ = self.env.step(action)
        return obs, (float(reward) if done else None), valid


# ----------------------------------------------------------------------------- human demonstrations


def _goal_key(state: str) -> str:
    """WebShop's process_goal: the instruction of a demo's first state, without the price clause."""
    s = state.lower().replace('"', "").replace("'", "")
    s = s.replace("webshop\ninstruction:", "").replace("\n[button] search [button_]", "").strip()
    return s.split(", and price lower than")[0]


def load_human_demos(il_trajs: str | Path, human_goals: str | Path) -> dict[int, list[str]]:
    """Goal index -> action sequence of its first human demonstration."""
    for p in (il_trajs, human_goals):
        if not Path(p).exists():
            raise EnvUnavailableError(
                f"{p} not found: WebShop's human demonstrations come with ./setup.sh -d all"
            )
    goals = {g: i for i, g in enumerate(json.loads(Path(human_goals).read_text()))}
    demos: dict[int, list[str]] = {}
    for n, line in enumerate(Path(il_trajs).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            traj = json.loads(line)
            idx = goals.get(_goal_key(traj["states"][0]))
            actions = traj.get("actions") or [
                acts[i] for acts, i in zip(traj["available_actions"], traj["action_idxs"], strict=True)
            ]
        except (json.JSONDecodeError, KeyError, IndexError, ValueError) as e:
            raise EnvError(
                f"{il_trajs} line {n}: not a WebShop demonstration ({type(e).__name__}: {e})"
            ) from None
        if idx is not None:
            demos.setdefault(idx, list(actions))
    return demos


# ----------------------------------------------------------------------------- the environment


class WebShopEnv(TextEnv):
    """WebShop via an installed web_agent_site (default) or a running server (`server_url`)."""

    name = "webshop"
    default_max_steps = 15

    def __init__(
        self,
        server_url: str | None = None,
        num_goals: int | None = None,
        human_demos: str | None = None,
        human_goals: str | None = None,
        num_products: int | None = None,
    ) -> None:
        if server_url:
            self.site: Any = UrlSite(HttpTransport(server_url))
            self.site.transport.request("GET", "/fixed_0")  # fail now, with the start command, if unreachable
            self.num_goals = num_goals or WEBSHOP_HUMAN_GOALS
            self.source = f"server {server_url}"
        else:
            self.site = TextEnvSite(num_products=num_products, human_goals=True)
            self.num_goals = num_goals or self.site.num_goals
            self.source = "web_agent_site"
        self._demos = load_human_demos(human_demos, human_goals) if human_demos and human_goals else None
        if bool(human_demos) != bool(human_goals):
            raise EnvError(
                "human_demos and human_goals go together (il_trajs_finalized_images.jsonl, human_goals.json)"
            )
        self._task: Task | None = None
        self._done = False
        self._score = 0.0
        self._last_obs = ""

    # ------------------------------------------------------------------ tasks
    def task_names(self) -> list[str]:
        return ["goal"]

    def goal_range(self, split: str) -> range:
        self.check_split(split)
        lo, hi = SPLIT_RANGES.get(split, (1500, self.num_goals))
        return range(lo, min(hi, self.num_goals))

    def tasks(self, split: str, task_names: list[str] | None = None) -> list[Task]:
        if task_names and task_names != ["goal"]:
            raise UnknownTaskError(
                f"WebShop has one task, 'goal' (got {task_names}); goals are Task.variation"
            )
        return [Task(env=self.name, name="goal", variation=i, split=split) for i in self.goal_range(split)]

    def _check_task(self, task: Task) -> None:
        if task.env != self.name or task.name != "goal":
            raise UnknownTaskError(f"not a {self.name} task: {task.id}")
        if task.variation not in self.goal_range(task.split):
            r = self.goal_range(task.split)
            raise UnknownTaskError(
                f"unknown goal index {task.variation} for split '{task.split}': {self.name} has goals "
                f"{r.start}-{r.stop - 1} there ({self.num_goals} goals: 0-499 test, 500-1499 dev, rest train)"
            )

    # ------------------------------------------------------------------ episode
    def reset(self, task: Task) -> Observation:
        self._check_task(task)
        text, instruction = self.site.reset(task.variation)
        self._task, self._done, self._score, self._last_obs = task, False, 0.0, text
        return Observation(task_description=instruction, text=text, info={"goal": task.variation})

    def step(self, action: str) -> StepResult:
        if self._task is None:
            raise EnvError("call reset(task) before step()")
        if self._done:
            return StepResult(self._last_obs, 0.0, True, self._score >= 100.0, self._score, valid=False)
        obs, reward, valid = self.site.step(action)
        self._last_obs = obs
        if reward is None:
            return StepResult(obs, 0.0, False, False, 0.0, valid=valid)
        self._done, self._score = True, 100.0 * reward
        return StepResult(
            obs, self._score, True, reward >= 1.0 - 1e-9, self._score, valid=valid, info={"reward": reward}
        )

    def admissible_actions(self) -> list[str]:
        if self._task is None:
            raise EnvError("call reset(task) before admissible_actions()")
        if self._done:
            return []
        has_search, clickables = self.site.available()
        return (["search[<query>]"] if has_search else []) + [
            f"click[{c}]" for c in clickables if c != "search"
        ]

    def expert_actions(self) -> list[str]:
        if self._task is None:
            raise EnvError("call reset(task) before expert_actions()")
        if self._demos is None:
            raise EnvError(
                "no expert for real WebShop without human demonstrations: pass human_demos= and human_goals="
            )
        if self._task.variation not in self._demos:
            raise EnvError(f"no human demonstration for WebShop goal {self._task.variation}")
        return list(self._demos[self._task.variation])

    def versions(self) -> dict[str, str]:
        try:
            site = importlib.metadata.version("web_agent_site")
        except importlib.metadata.PackageNotFoundError:
            site = "unknown"
        return {"webshop": self.source, "web_agent_site": site, "webshop_goals": str(self.num_goals)}


class WebShopOfflineEnv(WebShopEnv):
    """The offline shop (generated catalog, or WebShop's product files via `data_dir`); not WebShop numbers."""

    name = "webshop_offline"

    def __init__(
        self,
        seed: int = 0,
        products_per_type: int = 12,
        num_goals: int = 2000,
        data_dir: str | None = None,
        num_products: int | None = None,
    ) -> None:
        from actrl.envs.webshop_offline.catalog import generate_catalog, load_webshop_catalog
        from actrl.envs.webshop_offline.shop import OfflineShop

        if data_dir:
            catalog = load_webshop_catalog(data_dir, num_products=num_products)
        else:
            catalog = generate_catalog(seed, products_per_type=products_per_type, num_goals=num_goals)
        if not catalog.goals:
            raise EnvError(f"{catalog.source}: no goals (products need instructions with attributes)")
        self.shop = OfflineShop(catalog)
        self.site = UrlSite(ShopTransport(self.shop))
        self.num_goals = len(catalog.goals)
        self.source = f"offline shop, {catalog.source}"
        self._demos = None
        self._task, self._done, self._score, self._last_obs = None, False, 0.0, ""

    def expert_actions(self) -> list[str]:
        from actrl.envs.webshop_offline.expert import expert_actions

        if self._task is None:
            raise EnvError("call reset(task) before expert_actions()")
        return expert_actions(self.shop, self._task.variation)

    def versions(self) -> dict[str, str]:
        return {
            "webshop": self.source,
            "rank_bm25": importlib.metadata.version("rank-bm25"),
            "webshop_goals": str(self.num_goals),
        }
