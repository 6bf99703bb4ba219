"""The hub's web front: server-rendered pages for followers, authors and the operator.

Kept import-free: the store imports `web.tables`, and the pages import the store (see web/app.py).
"""
