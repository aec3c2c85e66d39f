"""Title normalisation: word tokens for BM25, character trigrams, the product name, and exact keys
(model numbers, GTIN / MPN-like codes).

Web titles often append shop and category boilerplate to the product name, after a quote or a bar
("Nike Tiempo Legacy II FG - Clear Jade/Black/Volt \" Nike Mens Boots Firm Ground"), plus language
tags ("@it"). Records of one shop share that tail, so it pulled same-shop non-duplicates above true
duplicates from other shops. The generators therefore count the first segment HEAD_WEIGHT times
(lexical, trigram) or embed it alone. Measured on the four WDC catalogues (benchmarks/candidates.py,
k = 20): BM25 recall 0.804-0.874 -> 0.848-0.883, embeddings 0.47-0.81 -> 0.63-0.82, lexical + keys +
embedding together 0.841-0.917 -> 0.873-0.929 at the same pairs per record; Abt-Buy and Walmart-Amazon
moved by <= 0.001.

>>> title_tokens("Nixon 'The Crew' Watch A1186-001")
['nixon', 'the', 'crew', 'watch', 'a1186', '001', 'a1186001']
>>> product_name('Puma evoTOUCH 2 FG"@de FG - Fußballschuhe | Shop')
'puma evotouch 2 fg'
>>> weighted_tokens("Sony A7 | Shop")
['sony', 'a7', 'sony', 'a7', 'sony', 'a7', 'shop']
>>> char_trigrams("A7 | Shop")
[' a7', 'a7 ', ' a7', 'a7 ', ' a7', 'a7 ', ' sh', 'sho', 'hop', 'op ']
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
# language tags of scraped titles ("@fr", "@es-ES") and the separators before boilerplate segments
LANGUAGE_TAG = re.compile(r"@[a-z]{2}(?:-[a-z]{2})?\b")
SEGMENT = re.compile(r'\s*(?:"|\||\s·\s|\s–\s|\s—\s)\s*')
HEAD_WEIGHT = 3  # term-frequency weight of the first segment (2: -0.3 to -0.8 points of recall vs 3)
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


def segments(text: str) -> list[str]:
    """Normalised text without language tags, cut at quotes, bars and spaced dots or dashes; the first
    segment names the product, the others are usually shop or category boilerplate."""
    return [part for part in SEGMENT.split(LANGUAGE_TAG.sub(" ", normalise(text))) if part.strip()]


def product_name(text: str) -> str:
    """The first segment (what the embedder encodes)."""
    parts = segments(text)
    return parts[0].strip() if parts else ""


def weighted_tokens(text: str) -> list[str]:
    """Word tokens of every segment, those of the first repeated HEAD_WEIGHT times (a term frequency)."""
    parts = segments(text)
    if not parts:
        return []
    return title_tokens(parts[0]) * HEAD_WEIGHT + [token for part in parts[1:] for token in title_tokens(part)]


def _trigrams(part: str) -> list[str]:
    return [word[i : i + 3] for word in (f" {w} " for w in part.split()) for i in range(max(len(word) - 2, 1))]


def char_trigrams(text: str) -> list[str]:
    """Character trigrams of each space-padded word, the first segment's repeated HEAD_WEIGHT times:
    they match codes and words however split or inflected ("ironwolf" / "iron wolf", "zapatillas")."""
    parts = segments(text)
    if not parts:
        return []
    return _trigrams(parts[0]) * HEAD_WEIGHT + [gram for part in parts[1:] for gram in _trigrams(part)]


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
