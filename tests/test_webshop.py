"""WebShop adapter: the offline shop (in-process and over HTTP), WebShop's page markup, its data layouts."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from actrl.envs import EnvError, EnvUnavailableError, Task, UnknownTaskError, make
from actrl.envs.webshop import (
    WebShopEnv,
    WebShopOfflineEnv,
    html_to_text,
    load_human_demos,
    page_clickables,
    page_reward,
    visible_texts,
)
from actrl.envs.webshop_offline.catalog import generate_catalog, load_webshop_catalog
from actrl.envs.webshop_offline.reward import get_reward
from actrl.envs.webshop_offline.search import ProductSearch
from actrl.envs.webshop_offline.shop import OfflineShop, serve

FIXTURES = Path(__file__).parent / "fixtures" / "webshop"


@pytest.fixture(scope="module")
def env() -> WebShopOfflineEnv:
    return make("webshop_offline")


def _play(env, task, actions):
    obs = env.reset(task)
    return obs, [env.step(a) for a in actions]


def test_expert_buys_the_goal_product_with_reward_1(env):
    tasks = env.tasks("test")[:120] + env.tasks("dev")[:40] + env.tasks("train")[:40]
    for task in tasks:
        env.reset(task)
        actions = env.expert_actions()
        assert actions[0].startswith("search[") and actions[-1] == "click[buy now]"
        _, results = _play(env, task, actions)
        last = results[-1]
        assert last.done and last.won and last.score == 100.0 and last.info["reward"] == 1.0, task.id
        assert all(r.valid for r in results) and not any(r.done for r in results[:-1])


def test_goal_index_splits_match_webshop(env):
    assert [t.variation for t in env.tasks("test")] == list(range(500))
    assert [t.variation for t in env.tasks("dev")] == list(range(500, 1500))
    assert [t.variation for t in env.tasks("train")] == list(range(1500, 2000))
    assert {t.split for t in env.tasks("dev")} == {"dev"}
    with pytest.raises(UnknownTaskError, match="unknown goal index 2500 .* 1500-1999"):
        env.reset(Task("webshop_offline", "goal", 2500, "train"))
    with pytest.raises(UnknownTaskError, match="unknown goal index 7 for split 'train'"):
        env.reset(Task("webshop_offline", "goal", 7, "train"))


def test_text_observations_and_page_flow(env):
    task = env.tasks("test")[3]
    obs = env.reset(task)
    assert obs.text == f"WebShop [SEP] Instruction: [SEP] {obs.task_description} [SEP] Search"
    assert env.admissible_actions() == ["search[<query>]"]
    res = env.step("search[shoes]")
    assert res.valid and "Page 1 (Total results:" in res.observation and "Back to Search" in res.observation
    actions = env.admissible_actions()
    assert "click[next >]" in actions and "click[< prev]" not in actions
    page2 = env.step("click[Next >]")  # case-insensitive, as WebAgentTextEnv lower-cases click arguments
    assert page2.valid and "Page 2" in page2.observation and "click[< prev]" in env.admissible_actions()
    product = next(a for a in env.admissible_actions() if a.startswith("click[b0"))
    item = env.step(product)
    assert "Buy Now" in item.observation and "Price: $" in item.observation
    features = env.step("click[features]")
    assert "< Prev" in features.observation and features.valid
    back = env.step("click[< prev]")
    assert back.observation == item.observation
    nothing = env.step("click[a button that is not there]")
    assert not nothing.valid and nothing.observation == item.observation and not nothing.done
    garbage = env.step("buy it")
    assert not garbage.valid
    again = env.step("search[wool socks]")  # search works from any page, as in WebAgentTextEnv
    assert again.valid and "Page 1" in again.observation


def test_wrong_purchases_score_below_one(env):
    task = env.tasks("test")[0]
    env.reset(task)
    actions = env.expert_actions()
    _, results = _play(
        env, task, [a for a in actions if a.startswith(("search", "click[b0"))] + ["click[buy now]"]
    )
    goal = env.shop.catalog.goals[task.variation]
    n_opt = len(goal["goal_options"])
    if n_opt:  # no options clicked: those points are lost
        assert not results[-1].won and results[-1].score < 100.0
    after = env.step("click[buy now]")
    assert after.done and not after.valid and after.score == results[-1].score


def test_reward_formula_parts():
    product = {
        "asin": "B0X",
        "Title": "Kestrel Rain Jacket - Waterproof, Hooded",
        "query": "rain jacket",
        "product_category": "Clothing › Men › Rain Jacket",
        "Attributes": ["waterproof", "hooded"],
        "BulletPoints": [],
        "Description": "",
        "type_words": ["rain", "jacket"],
    }
    goal = {
        "query": "rain jacket",
        "product_category": "Clothing › Men › Rain Jacket",
        "type_words": ["rain", "jacket"],
        "attributes": ["waterproof", "hooded"],
        "goal_options": {"color": "red", "size": "large"},
        "price_upper": 50.0,
    }
    full, _ = get_reward(product, goal, 40.0, {"color": "red", "size": "large"})
    assert full == 1.0
    assert get_reward(product, goal, 40.0, {"color": "red", "size": "small"})[0] == pytest.approx(
        4 / 5
    )  # size: exact match only
    assert get_reward(product, goal, 60.0, {"color": "red", "size": "large"})[0] == pytest.approx(
        4 / 5
    )  # over the price cap
    assert get_reward(product, goal, 40.0, {})[0] == pytest.approx(3 / 5)
    socks = {
        **product,
        "query": "wool socks",
        "product_category": "Clothing › Men › Socks",
        "type_words": ["wool", "socks"],
        "Title": "Wool Socks",
    }
    assert (
        get_reward(socks, goal, 40.0, {"color": "red", "size": "large"})[0] == 0.0
    )  # another kind of product


def test_bm25_search_ranks_matching_products_first():
    catalog = generate_catalog(seed=1)
    search = ProductSearch(catalog.products)
    hits = search.search("waterproof hooded rain jacket")
    assert 0 < len(hits) <= 50 and hits == search.search("Waterproof, HOODED rain-jacket")
    wanted = {"waterproof", "hooded"}
    best = max(len(wanted & set(p["Attributes"])) for p in catalog.products if p["query"] == "rain jacket")
    top = catalog.by_asin[hits[0]]
    assert top["query"] == "rain jacket" and len(wanted & set(top["Attributes"])) == best
    assert search.search("zzzz unknownword") == []
    assert generate_catalog(seed=1).goals == catalog.goals and generate_catalog(seed=2).goals != catalog.goals


def test_server_by_url_plays_like_the_in_process_shop(env):
    """The real-server code path (HTTP, redirects, page parsing) against the offline shop served on loopback."""
    task = env.tasks("dev")[5]
    env.reset(task)
    actions = env.expert_actions()
    _, local = _play(env, task, actions)
    with serve(env.shop) as url:
        remote_env = WebShopEnv(server_url=url, num_goals=env.num_goals)
        obs, remote = _play(remote_env, Task("webshop", "goal", task.variation, "dev"), actions)
        assert obs.task_description == env.shop.catalog.goals[task.variation]["instruction_text"]
        assert [r.observation for r in remote] == [r.observation for r in local]
        assert remote[-1].won and remote[-1].score == 100.0
        assert remote_env.versions()["webshop"] == f"server {url}"
        with pytest.raises(EnvError, match="human_demos"):
            remote_env.expert_actions()


def test_unreachable_server_and_missing_webshop_say_what_to_start():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    with pytest.raises(EnvUnavailableError, match="unreachable.*web_agent_site.app"):
        WebShopEnv(server_url=f"http://127.0.0.1:{port}")
    with pytest.raises(EnvUnavailableError, match="setup.sh"):
        make("webshop")


def test_webshop_markup_fixtures_parse_into_text_actions_and_reward():
    item = (FIXTURES / "item_page.html").read_text()
    has_search, clickables = page_clickables(item)
    assert not has_search
    assert set(clickables) == {
        "back to search",
        "< prev",
        "2.5 fl oz",
        "6.76 fl oz (pack of 1)",
        "description",
        "features",
        "reviews",
        "buy now",
    }
    assert clickables["buy now"].method == "POST" and clickables["buy now"].path.startswith(
        "/done/fixed_7/B000VOHH8I/"
    )
    assert clickables["2.5 fl oz"].method == "GET" and "%272.5%20fl%20oz%27" in clickables["2.5 fl oz"].path
    text = html_to_text(item)
    assert text.startswith("Instruction: [SEP] i need a long lasting") and "$(document)" not in text
    assert " [SEP] size [SEP] 2.5 fl oz [SEP] 6.76 fl oz (pack of 1) [SEP] L'eau D'issey" in text
    done = visible_texts((FIXTURES / "done_page.html").read_text())
    assert page_reward(done) == pytest.approx(2 / 3) and page_reward(visible_texts(item)) is None


def _write_webshop_data(root: Path) -> Path:
    """A directory laid out like WebShop's data/ (setup.sh -d small), with two products."""
    root.mkdir(parents=True)
    items = [
        {
            "asin": "B000VOHH8I",
            "name": "L'eau D'issey By Issey Miyake for Men Eau De Toilette Spray",
            "category": "beauty",
            "query": "men's fragrance",
            "product_category": "Beauty & Personal Care › Fragrance › Men's › Eau de Toilette",
            "full_description": "A fresh aquatic fragrance.",
            "small_description": ["Long lasting", "6.7 ounce spray"],
            "pricing": "$64.98",
            "customization_options": {"Size": [{"value": "2.5 fl oz"}, {"value": "6.76 Fl Oz/Pack of 1"}]},
            "images": ["https://example.invalid/1.jpg"],
        },
        {
            "asin": "B07ABCDEFG",
            "name": "Budget Body Spray for Men",
            "category": "beauty",
            "query": "men's fragrance",
            "product_category": "Beauty & Personal Care › Fragrance › Men's › Body Spray",
            "full_description": "Cheap.",
            "small_description": "Smells fine",
            "pricing": "$5.00 to $9.00",
            "customization_options": None,
            "images": ["x"],
        },
        {
            "asin": "nan",
            "name": "broken row",
            "category": "beauty",
            "query": "x",
            "product_category": "x",
            "small_description": "",
            "customization_options": None,
            "images": ["x"],
        },
    ]
    attrs = {
        "B000VOHH8I": {"attributes": ["long lasting", "eau de toilette"]},
        "B07ABCDEFG": {"attributes": ["body spray"]},
    }
    human = {
        "B000VOHH8I": [
            {
                "instruction": "i need a long lasting 6.76 fl oz bottle of l'eau d'issey",
                "instruction_attributes": ["long lasting"],
                "instruction_options": ["6.76 fl oz | pack of 1"],
            }
        ]
    }
    (root / "items_shuffle_1000.json").write_text(json.dumps(items))
    (root / "items_ins_v2_1000.json").write_text(json.dumps(attrs))
    (root / "items_human_ins.json").write_text(json.dumps(human))
    return root


def test_webshop_product_files_load_into_the_offline_shop(tmp_path):
    data = _write_webshop_data(tmp_path / "data")
    catalog = load_webshop_catalog(data)
    assert [p["asin"] for p in catalog.products] == ["B000VOHH8I", "B07ABCDEFG"]
    issey = catalog.by_asin["B000VOHH8I"]
    assert (
        issey["options"] == {"size": ["2.5 fl oz", "6.76 fl oz | pack of 1"]} and issey["Price"] == "$64.98"
    )
    assert (
        catalog.by_asin["B07ABCDEFG"]["pricing"] == [5.0, 9.0] and 5.0 <= catalog.prices["B07ABCDEFG"] <= 9.0
    )
    assert len(catalog.goals) == 1 and catalog.goals[0]["instruction_text"].startswith(
        "i need a long lasting"
    )
    assert "price lower than" in catalog.goals[0]["instruction_text"]
    env = WebShopOfflineEnv(data_dir=str(data))
    task = env.tasks("test")[0]
    env.reset(task)
    _, results = _play(env, task, env.expert_actions())
    assert results[-1].won
    with pytest.raises(EnvUnavailableError, match="items_shuffle"):
        load_webshop_catalog(tmp_path)


def test_human_demonstrations_map_to_goal_indices(tmp_path):
    goals = ["i want a red rain jacket", "i need wool socks"]
    (tmp_path / "human_goals.json").write_text(json.dumps(goals))
    demo = {
        "states": [
            "WebShop\nInstruction:\nI need wool socks, and price lower than 30.00 dollars\n[button] Search [button_]",
            "...",
        ],
        "actions": ["search[wool socks]", "click[b0abc]", "click[buy now]"],
        "available_actions": [[], [], []],
        "action_idxs": [-1, 0, 0],
    }
    other = {
        "states": ["WebShop\nInstruction:\nsomething never asked\n[button] Search [button_]"],
        "actions": ["search[x]"],
    }
    (tmp_path / "il.jsonl").write_text(json.dumps(demo) + "\n" + json.dumps(other) + "\n")
    assert load_human_demos(tmp_path / "il.jsonl", tmp_path / "human_goals.json") == {1: demo["actions"]}
    (tmp_path / "bad.jsonl").write_text(json.dumps(demo) + "\n{not json\n")
    with pytest.raises(EnvError, match="bad.jsonl line 2"):
        load_human_demos(tmp_path / "bad.jsonl", tmp_path / "human_goals.json")
    with pytest.raises(EnvUnavailableError, match="setup.sh"):
        load_human_demos(tmp_path / "missing.jsonl", tmp_path / "human_goals.json")


def test_same_actions_give_same_observations(env):
    task = env.tasks("train")[11]
    env.reset(task)
    actions = env.expert_actions()
    assert [r.observation for r in _play(env, task, actions)[1]] == [
        r.observation for r in _play(env, task, actions)[1]
    ]


def test_offline_shop_site_rejects_unknown_sessions():
    shop = OfflineShop(generate_catalog(seed=0, num_goals=10))
    html, _ = shop.get("/fixed_9")
    assert "Search" in html_to_text(html)
    with pytest.raises(KeyError, match="fixed_0 .. fixed_9"):
        shop.get("/fixed_10")


def test_module_doctests_hold():
    import doctest

    from actrl.envs.webshop_offline import expert, reward, search

    for module in (expert, reward, search):
        assert doctest.testmod(module).failed == 0, module.__name__
