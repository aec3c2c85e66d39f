"""A record's text from one column or several: the one rule that `scorer train`, `scorer run`, the export's
calibration, `scorer candidates` and `--reuse` share.

A text spec names the columns: `title`, or `title,brand,model_no` to join several. The joined text is the
non-null values in the spec's order, separated by one space; it is null only when every value is null (a record
without a brand is still a record). A spec that is itself a column name of the file is that column, comma or not.
Checkpoints and manifests record the spec (`normal`), and `scorer run` refuses to build text another way.

>>> spec_columns("title, brand", ["title", "brand", "price"])
('title', 'brand')
>>> join([["Sony TV", "LG", None], ["sony", None, None]])
['Sony TV sony', 'LG', None]
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

SEPARATOR = " "


def spec_columns(spec: str, names: Sequence[str] = ()) -> tuple[str, ...]:
    """The columns a spec joins: the spec itself where `names` (the file's columns) hold it, else its
    comma-separated parts. A missing column is the caller's to report, with the file and the flag."""
    if spec in names or "," not in spec:
        return (spec,)
    return tuple(part.strip() for part in spec.split(","))


def normal(spec: str) -> str:
    """A spec as checkpoints and manifests record it: its columns joined by commas, no spaces."""
    return ",".join(spec_columns(spec))


def join(columns: Sequence[Sequence[str | None]]) -> list[str | None]:
    """The texts of one column, or of several joined by `SEPARATOR` (null where every value is null)."""
    if len(columns) == 1:
        return list(columns[0])
    values = ([value for value in row if value is not None] for row in zip(*columns, strict=True))
    return [SEPARATOR.join(found) if found else None for found in values]


def as_trained(
    trained: dict[str, str] | None, specs: dict[str, str], given: Collection[str]
) -> tuple[dict[str, str], str | None]:
    """The specs a run builds its texts with, by side (`query`, `candidate`): those the model was `trained` on
    (the user's `specs` where it recorded none), and a message when a spec the user gave (`given` names those
    sides) differs from the trained one."""
    if not trained:
        return specs, None
    for side in given:
        if normal(specs[side]) != trained[side]:
            return specs, (
                f"the model was trained on {side} text built from {trained[side]!r}, not {normal(specs[side])!r}; "
                f"give --{side}-col {trained[side]} (rename the input's columns if they hold the same fields "
                "under other names)"
            )
    return {side: trained[side] for side in specs}, None
