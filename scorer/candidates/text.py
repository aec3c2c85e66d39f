"""Title normalisation: word tokens for BM25 and exact keys (model numbers, GTIN / MPN-like codes).

>>> title_tokens("Nixon 'The Crew' Watch A1186-001")
['nixon', 'the', 'crew', 'watch', 'a1186', '001', 'a1186001']
>>> keys("Sony DSC-W310 12.1MP, 4GB, 1080p, EAN 4905524644571, dsc-w310")
['dscw310', '4905524644571']
"""

from __future__ import annotations

import re
import unicodedata

# runs of letters/digits joined by -, /, . or _ (e.g. "dsc-w310", "a1186-001", "12.1mp")
COMPOUND = re.compile(r"[^\W_]+(?:[-/._][^\W_]+)*")
WORD = re.compile(r"[^\W_]+")
SEPARATORS = re.compile(r"[-/._]")
# measurements and formats are not identifiers: 4gb, 12.1mp, 1080p, 2.4ghz, 3x, 500ml...
UNIT = re.compile(
    r"\d+(?:[.,]\d+)?(?:gb|tb|mb|kb|mp|mm|cm|m|in|inch|ft|hz|khz|mhz|ghz|w|kw|v|mah|oz|lb|lbs|ml|l|g|kg|"
    r"p|i|k|x|pcs|pc|pack|ct|gbps|mbps|rpm|nm|s)"
)
MIN_KEY_LENGTH = 4
GTIN_LENGTHS = range(8, 15)


def normalise(text: str) -> str:
    """Lowercase, compatibility-fold and strip accents."""
    if text.isascii():
        return text.lower()
    folded = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in folded if not unicodedata.combining(ch))


def title_tokens(text: str) -> list[str]:
    """Word tokens, plus each joined compound ("a1186-001" -> "a1186001") so codes match however written."""
    tokens: list[str] = []
    for compound in COMPOUND.findall(normalise(text)):
        parts = WORD.findall(compound)
        tokens.extend(parts)
        if len(parts) > 1:
            tokens.append("".join(parts))
    return tokens


def _is_key(code: str, raw: str) -> bool:
    if len(code) < MIN_KEY_LENGTH or UNIT.fullmatch(raw.replace(",", ".")):
        return False
    if code.isdigit():
        return len(code) in GTIN_LENGTHS or len(code) >= 5
    return any(ch.isdigit() for ch in code) and any(ch.isalpha() for ch in code)


def keys(text: str) -> list[str]:
    """Identifier-like codes in `text`, separators removed, in order, each once."""
    found: dict[str, None] = {}
    for raw in COMPOUND.findall(normalise(text)):
        code = SEPARATORS.sub("", raw)
        if _is_key(code, raw):
            found[code] = None
    return list(found)
