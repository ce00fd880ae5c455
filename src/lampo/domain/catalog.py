"""What is sold: categories, products and their SKUs."""

from __future__ import annotations

from dataclasses import dataclass

from lampo.domain.errors import InvalidRequest


def check_id(field: str, value: object, max_len: int = 64) -> str:
    """An identifier: a non-empty printable string without spaces, at most ``max_len`` long."""
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise InvalidRequest(field, f"must be a non-empty string of at most {max_len} chars")
    # isprintable() refuses every whitespace character but the ASCII space
    if not value.isprintable() or " " in value:
        raise InvalidRequest(field, f"{value!r} must be printable without spaces")
    return value


#: The longest display name (of an event, market, category, SKU, milestone).
MAX_NAME = 200


def check_name(field: str, value: object) -> str:
    """A display name: a non-empty string of printable characters, at most ``MAX_NAME``."""
    if not isinstance(value, str) or not value or len(value) > MAX_NAME:
        raise InvalidRequest(field, f"must be a non-empty string of at most {MAX_NAME} chars")
    if not value.isprintable():
        raise InvalidRequest(field, f"{value[:40]!r} must be printable")
    return value


@dataclass(frozen=True, slots=True)
class Category:
    """A product category such as ``phones`` or ``tv``; ``unit`` names one item in reports."""

    id: str
    name: str
    unit: str = "units"

    def __post_init__(self) -> None:
        check_id("category", self.id)
        check_name("category name", self.name)
        check_name("unit", self.unit)


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    name: str
    category: str

    def __post_init__(self) -> None:
        check_id("product", self.id)
        check_id("category", self.category)


@dataclass(frozen=True, slots=True)
class Sku:
    """A sellable variant of a product (colour, memory size)."""

    id: str
    product: str
    name: str
    category: str

    def __post_init__(self) -> None:
        check_id("sku", self.id)
        check_id("product", self.product)
        check_name("sku name", self.name)
        check_id("category", self.category)
