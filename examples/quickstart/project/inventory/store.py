"""Stock kept in memory."""


class Store:
    def __init__(self, items={}):
        # BUG (on purpose): a mutable default argument is shared by every Store
        self.items = items

    def add(self, sku, quantity):
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        self.items[sku] = self.items.get(sku, 0) + quantity

    def remove(self, sku, quantity):
        available = self.items.get(sku, 0)
        if quantity > available:
            raise KeyError(sku)
        self.items[sku] = available - quantity

    def count(self, sku):
        return self.items.get(sku, 0)
