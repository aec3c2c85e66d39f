"""Product codes that read alike however they are written: `DSC-W170` and `DSCW170`, `MB397G/A` and `MB397GA`.

Retailers write the same model number with and without hyphens or slashes, and a WordPiece or BPE vocabulary
splits the spellings into different tokens. `join_codes` adds one rule to a fast tokenizer's normalizer: drop a
`-` or `/` between word characters where the part after it holds a digit or a digit stands at most four characters
before it. Words without digits (`cyber-shot`, `am/fm`) keep theirs. The rule lives in the tokenizer, so the checkpoint's
`tokenizer.json` carries it to `CrossEncoder.predict`, the export and `scorer run` alike, with no flag to repeat.

>>> from tokenizers import Tokenizer, models
>>> tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
>>> join_codes(tokenizer)
True
>>> tokenizer.normalizer.normalize_str("Sony Cyber-Shot DSC-W170, F8N044-SLV, MB397G/A")
'Sony Cyber-Shot DSCW170, F8N044SLV, MB397GA'
"""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, normalizers

PATTERN = r"(?<=\w)[-/](?=\w*\d)|(?<=\d|\d\w|\d\w\w|\d\w\w\w)[-/](?=\w)"
_PROBE = ("x-1", "x1")  # a text the rule changes, and what it becomes (before any lowercasing)


def joins_codes(tokenizer: Tokenizer) -> bool:
    """Whether this tokenizer's normalizer already reads `x-1` as `x1`."""
    normalizer = tokenizer.normalizer
    return normalizer is not None and normalizer.normalize_str(_PROBE[0]).lower() == _PROBE[1]


def join_codes(tokenizer: Tokenizer) -> bool:
    """Add the rule after the tokenizer's own normalizer (lowercasing, accents); False where it was there already."""
    if joins_codes(tokenizer):
        return False
    rule = normalizers.Replace(Regex(PATTERN), "")
    own = tokenizer.normalizer
    tokenizer.normalizer = rule if own is None else normalizers.Sequence([own, rule])
    return True
