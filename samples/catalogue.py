"""A deterministic sample product catalogue, in the pairs and the listwise format.

Products are (brand, type, variant, size, pack) combinations from `catalogue_vocab`.
Each is rendered as retailers write it: an English title ("Nordvik 70 % Cacao Dark
Chocolate With Coconut, 100 g"), a shelf label ("NRDVK DRK CHCLT BAR, COCONUT 3.5OZ"),
a title in another language ("Chocolat noir Nordvik Noix de coco 100 g"), a lowercase
marketplace string, or a title followed by a long description (pairs of those run past
128 tokens). Candidates for a query are graded:

- `DUPLICATE` (1.0): the same product, rendered another way;
- `NEAR_DUPLICATE` (0.3): same brand and type, one of variant/size/pack differs;
- `SAME_TYPE` (0.1): the same type, variant and size from another brand;
- `UNRELATED` (0.0): a product of another type.

The pairs format labels duplicates 1 and everything else 0. Products are split into
train/valid/test (80/10/10) before any row is drawn, so the queries of one split are
products the others never ask about. The same seed gives the same tables.

>>> pairs_table(3, seed=1).column_names
['query', 'candidate', 'label']
>>> pairs_table(50, seed=1).equals(pairs_table(50, seed=1))
True
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq

from samples.catalogue_vocab import LANGUAGES, PRODUCT_TYPES, VARIANTS, ProductType, Size

DUPLICATE, NEAR_DUPLICATE, SAME_TYPE, UNRELATED = 1.0, 0.3, 0.1, 0.0
SPLITS = ("train", "valid", "test")
Split = Literal["train", "valid", "test"]
Format = Literal["pairs", "listwise"]

_IMPERIAL = {
    "g": (0.035274, "oz"),
    "kg": (2.20462, "lb"),
    "ml": (0.033814, "fl oz"),
    "l": (33.814, "fl oz"),
    "m": (3.28084, "ft"),
}
_PACK_WORDS = {
    "fr": "lot de {n}",
    "de": "{n}er-Pack",
    "es": "pack de {n}",
    "it": "confezione da {n}",
}
# Share of pair rows per candidate kind, and documents per kind in a listwise row.
_PAIR_MIX = {DUPLICATE: 0.4, NEAR_DUPLICATE: 0.3, SAME_TYPE: 0.15, UNRELATED: 0.15}
_LIST_MIX = {DUPLICATE: 2, NEAR_DUPLICATE: 3, SAME_TYPE: 1, UNRELATED: 2}
_PAIRS_PER_QUERY = 4


@dataclass(frozen=True)
class Product:
    """One sellable item (a SKU)."""

    kind: ProductType
    brand: str
    variant: str
    size: Size | None
    pack: int


def abbreviate(text: str) -> str:
    """Shelf-label abbreviation: words over three letters lose their inner vowels.

    >>> abbreviate("Dark Chocolate")
    'DRK CHCLT'
    """
    words = []
    for word in text.upper().split():
        if len(word) > 3 and word.isalpha():
            word = word[0] + "".join(c for c in word[1:] if c not in "AEIOU")
        words.append(word)
    return " ".join(words)


def _number(value: float, decimal: str = ".") -> str:
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return text.replace(".", decimal)


def _size_text(size: Size, rng: random.Random, decimal: str = ".") -> str:
    """The size as written on a pack: metric, compact metric or imperial."""
    style = rng.choice(("metric", "compact", "imperial"))
    if style == "imperial" and size.unit in _IMPERIAL:
        factor, unit = _IMPERIAL[size.unit]
        return f"{_number(size.value * factor)} {unit}"
    if style == "compact" and size.unit != "bags":
        return f"{_number(size.value, decimal)}{size.unit}"
    return f"{_number(size.value, decimal)} {size.unit}"


def _pack_text(pack: int, rng: random.Random) -> str:
    if pack == 1:
        return ""
    return rng.choice((f"Pack of {pack}", f"{pack}-Pack", f"{pack} Count"))


def _title(product: Product, rng: random.Random) -> str:
    kind = product.kind
    text = kind.title.format(brand=product.brand, variant=VARIANTS[product.variant][0])
    if product.size is not None:
        text += ", " + _size_text(product.size, rng)
    pack = _pack_text(product.pack, rng)
    return f"{text} ({pack})" if pack else text


def _shelf(product: Product, rng: random.Random) -> str:
    variant = VARIANTS[product.variant][0].upper()
    parts = [abbreviate(product.brand), product.kind.shelf + ","]
    parts.append(abbreviate(variant) if rng.random() < 0.5 else variant)
    if product.size is not None:
        parts.append(_size_text(product.size, rng).replace(" ", "").upper())
    if product.pack > 1:
        parts.append(f"{product.pack}PK")
    return " ".join(parts)


def _foreign(product: Product, rng: random.Random) -> str:
    lang = rng.randrange(1, len(LANGUAGES))
    name, variant = product.kind.names[lang], VARIANTS[product.variant][lang]
    head = f"{name} {product.brand}" if rng.random() < 0.5 else f"{product.brand} {name}"
    parts = [head, variant]
    if product.size is not None:
        parts.append(_size_text(product.size, rng, decimal=","))
    if product.pack > 1:
        parts.append(_PACK_WORDS[LANGUAGES[lang]].format(n=product.pack))
    return " ".join(parts)


def _marketplace(product: Product, rng: random.Random) -> str:
    parts = [product.brand, VARIANTS[product.variant][0], product.kind.names[0]]
    if product.size is not None:
        parts.append(_size_text(product.size, rng))
    rng.shuffle(parts)
    pack = _pack_text(product.pack, rng)
    return " - ".join(parts).lower() + (f" | {pack.lower()}" if pack else "")


def _described(product: Product, rng: random.Random) -> str:
    facts = rng.sample(product.kind.facts, k=min(8, len(product.kind.facts)))
    size = _size_text(product.size, rng) if product.size is not None else "single"
    variant = VARIANTS[product.variant][0].lower()
    text = " ".join(f.format(brand=product.brand, variant=variant, size=size) for f in facts)
    return f"{_title(product, rng)}. {text}"


_RENDERERS = (_title, _shelf, _foreign, _marketplace, _described)
_RENDER_WEIGHTS = (0.3, 0.2, 0.2, 0.2, 0.1)


def render(product: Product, rng: random.Random) -> str:
    """One retailer's way of writing `product`."""
    return rng.choices(_RENDERERS, _RENDER_WEIGHTS)[0](product, rng)


@cache
def products_by_split(seed: int) -> dict[str, tuple[Product, ...]]:
    """Every product, shuffled with `seed` and split 80/10/10 into train/valid/test."""
    products = [
        Product(kind, brand, variant, size, pack)
        for kind in PRODUCT_TYPES
        for brand in kind.brands
        for variant in kind.variants
        for size in kind.sizes or (None,)
        for pack in kind.packs
    ]
    random.Random(seed).shuffle(products)
    cut1, cut2 = int(0.8 * len(products)), int(0.9 * len(products))
    return {
        "all": tuple(products),
        "train": tuple(products[:cut1]),
        "valid": tuple(products[cut1:cut2]),
        "test": tuple(products[cut2:]),
    }


def near_duplicate(product: Product, rng: random.Random) -> Product:
    """The product with exactly one of variant, size or pack changed."""
    kind = product.kind
    options = {
        "variant": [v for v in kind.variants if v != product.variant],
        "size": [s for s in kind.sizes if s != product.size],
        "pack": [p for p in kind.packs if p != product.pack],
    }
    field = rng.choice([name for name, values in options.items() if values])
    return replace(product, **{field: rng.choice(options[field])})


def _candidate(product: Product, grade: float, rng: random.Random, seed: int) -> Product:
    if grade == DUPLICATE:
        return product
    if grade == NEAR_DUPLICATE:
        return near_duplicate(product, rng)
    if grade == SAME_TYPE:
        brands = [b for b in product.kind.brands if b != product.brand]
        return replace(product, brand=rng.choice(brands))
    return rng.choice(_other_types(seed, product.kind.key))


@cache
def _other_types(seed: int, key: str) -> tuple[Product, ...]:
    return tuple(p for p in products_by_split(seed)["all"] if p.kind.key != key)


def _other_rendering(product: Product, avoid: str, rng: random.Random) -> str:
    """A rendering of `product` that differs from `avoid` (a query's own text)."""
    for _ in range(20):
        text = render(product, rng)
        if text != avoid:
            return text
    return _shelf(product, rng)


def _rng(seed: int, split: str, fmt: str) -> random.Random:
    return random.Random(f"catalogue:{seed}:{split}:{fmt}")


def pairs_table(n: int, seed: int = 0, split: Split = "train", records: float = 0.0) -> pa.Table:
    """`n` rows of (query, candidate, label int8 0/1) whose queries come from `split`.

    Each query has 1 to `_PAIRS_PER_QUERY` consecutive rows, as a blocking step
    would give. A share `records` of the queries, and their candidates, are whole records (title and
    description, 100-250 tokens a pair) instead of any rendering.
    """
    rng, products = _rng(seed, split, "pairs"), products_by_split(seed)[split]
    grades, weights = list(_PAIR_MIX), list(_PAIR_MIX.values())
    queries, candidates, labels = [], [], []
    while len(queries) < n:
        product = rng.choice(products)
        whole = records > 0 and rng.random() < records
        query = _described(product, rng) if whole else render(product, rng)
        count = min(rng.randint(1, _PAIRS_PER_QUERY), n - len(queries))
        for grade in rng.choices(grades, weights, k=count):
            other = _candidate(product, grade, rng, seed)
            queries.append(query)
            candidates.append(_described(other, rng) if whole else _other_rendering(other, query, rng))
            labels.append(int(grade == DUPLICATE))
    return pa.table(
        {
            "query": pa.array(queries, pa.string()),
            "candidate": pa.array(candidates, pa.string()),
            "label": pa.array(labels, pa.int8()),
        }
    )


def listwise_table(n: int, seed: int = 0, split: Split = "train") -> pa.Table:
    """`n` rows of (query, documents, scores): 8 graded documents per query."""
    rng, products = _rng(seed, split, "listwise"), products_by_split(seed)[split]
    queries, documents, scores = [], [], []
    for _ in range(n):
        product = rng.choice(products)
        query = render(product, rng)
        graded = [
            (_other_rendering(_candidate(product, grade, rng, seed), query, rng), grade)
            for grade, count in _LIST_MIX.items()
            for _ in range(count)
        ]
        rng.shuffle(graded)
        queries.append(query)
        documents.append([doc for doc, _ in graded])
        scores.append([grade for _, grade in graded])
    return pa.table(
        {
            "query": pa.array(queries, pa.string()),
            "documents": pa.array(documents, pa.list_(pa.string())),
            "scores": pa.array(scores, pa.list_(pa.float32())),
        }
    )


def sample_pairs(n: int, seed: int = 0, records: float = 0.0) -> pa.Table:
    """Test-split pairs to score: `id` (int64), `query`, `candidate`, `label` (int8); `records` as in
    `pairs_table`."""
    table = pairs_table(n, seed, "test", records)
    return table.add_column(0, "id", pa.array(range(n), pa.int64()))


def write_splits(
    directory: Path,
    fmt: Format = "pairs",
    seed: int = 0,
    rows: tuple[int, int, int] = (2000, 300, 300),
) -> dict[str, Path]:
    """Write train/valid/test.parquet (`rows` each) into `directory`; their paths."""
    make = pairs_table if fmt == "pairs" else listwise_table
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, n in zip(SPLITS, rows, strict=True):
        paths[split] = directory / f"{split}.parquet"
        pq.write_table(make(n, seed, split), paths[split])
    return paths


def catalogue_records(products: int, seed: int = 0) -> pa.Table:
    """A catalogue to deduplicate: `id` (int64), `title`, `product` (the truth: records of one product are
    duplicates). Test-split products, each listed by 1-3 retailers in their own way.

    >>> table = catalogue_records(20, seed=1)
    >>> table.column_names, table.num_rows >= 20, len(set(table["product"].to_pylist()))
    (['id', 'title', 'product'], True, 20)
    """
    rng = random.Random(seed)
    chosen = rng.sample(products_by_split(seed)["test"], products)
    titles, truth = [], []
    for index, product in enumerate(chosen):
        for _ in range(rng.choice((1, 2, 2, 3))):
            titles.append(render(product, rng))
            truth.append(index)
    return pa.table({"id": range(len(titles)), "title": titles, "product": pa.array(truth, pa.int64())})


def next_night(catalogue: pa.Table, changed: float, seed: int = 1) -> pa.Table:
    """The catalogue a night later: a share `changed` of the records re-listed (a new title, same id and
    product), and as many new records, each another listing of a product already there.

    >>> night1 = catalogue_records(20, seed=1)
    >>> night2 = next_night(night1, 0.1)
    >>> night2.num_rows - night1.num_rows == int(0.1 * night1.num_rows), night2["id"][0] == night1["id"][0]
    (True, True)
    """
    rng = random.Random(seed)
    titles, truth = catalogue["title"].to_pylist(), catalogue["product"].to_pylist()
    relisted = rng.sample(range(len(titles)), int(changed * len(titles)))
    for row in relisted:
        titles[row] = f"{titles[row]} ({rng.choice(['new pack', 'promo', 'v2', 'bundle'])})"
    added = rng.sample(range(len(titles)), int(changed * len(titles)))
    ids = catalogue["id"].to_pylist()
    for row in added:
        ids.append(len(ids))
        titles.append(titles[row].lower())
        truth.append(truth[row])
    return pa.table({"id": ids, "title": titles, "product": pa.array(truth, pa.int64())})
