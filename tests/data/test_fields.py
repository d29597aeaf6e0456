from typing import Literal

import pytest

from made.data.fields import SchemaError, check_fields, check_value


@pytest.mark.parametrize(
    "value, hint, ok",
    [
        (3, int, True),
        (True, int, False),
        (3.0, int, False),
        ("3", int, False),
        (3, float, True),
        (2.5, float, True),
        (False, float, False),
        (True, bool, True),
        (1, bool, False),
        (None, int | None, True),
        ("x", int | None, False),
        ("unlimited", int | Literal["unlimited"], True),
        ("all", int | Literal["unlimited"], False),
        ([1, 2], list[int], True),
        ([1, True], list[int], False),
        ((1, 2), list[int], False),
        ({"a": 1}, dict[str, int], True),
        ({"a": "1"}, dict[str, int], False),
        ([], dict, False),
    ],
)
def test_check_value_is_strict_about_types(value, hint, ok):
    if ok:
        check_value(value, hint, "field")
    else:
        with pytest.raises(SchemaError, match="field must be"):
            check_value(value, hint, "field")


def test_check_fields():
    hints = {"a": int, "b": str | None}
    check_fields({"a": 1, "b": None}, hints, "cfg", ranges={"a": lambda v: v > 0})
    check_fields({"a": 1}, hints, "cfg", optional=["b"])
    with pytest.raises(SchemaError, match=r"missing keys \['b'\], unknown keys \['c'\]"):
        check_fields({"a": 1, "c": 2}, hints, "cfg")
    with pytest.raises(SchemaError, match="cfg.a has a value outside"):
        check_fields({"a": 0, "b": "x"}, hints, "cfg", ranges={"a": lambda v: v > 0})
    with pytest.raises(SchemaError, match="cfg must be an object"):
        check_fields([1], hints, "cfg")
