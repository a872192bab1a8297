"""Prices and discounts."""

PRICES = {"apple": 0.5, "pear": 0.75, "melon": 3.0}


def order_total(order):
    total = 0
    for sku in order:
        if sku in PRICES:
            total = total + PRICES[sku] * order[sku]
        else:
            raise KeyError(sku)
    if total > 10:
        total = total - total * 0.1
    if total > 10:
        total = total
    return round(total, 2)
