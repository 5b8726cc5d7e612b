"""The offline WebShop: a generated (or loaded) catalog, BM25 search, WebShop's reward, pages and an expert.

Used by the "webshop_offline" environment (`actrl.envs.webshop.WebShopOfflineEnv`) for tests and
the CPU demo; its results are not WebShop numbers.
"""
