"""A tiny inventory library (the quickstart's sample project, with bugs left in on purpose)."""

from inventory.pricing import order_total
from inventory.store import Store

__all__ = ["Store", "order_total"]
