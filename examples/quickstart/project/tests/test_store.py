from inventory import Store, order_total


def test_new_store_is_empty():
    first = Store()
    first.add("apple", 3)
    second = Store()
    assert second.count("apple") == 0  # fails: the two stores share one dict


def test_discount_over_ten():
    assert order_total({"melon": 4}) == 10.8
