"""Fonts of the PDF documents, from the packages Debian ships, and text drawn
in the font of its script.

Latin and most symbols (₹) in Noto Sans (fonts-noto-core), Devanagari in
Noto Sans Devanagari (fonts-noto-core), Chinese in WenQuanYi Zen Hei
(fonts-wqy-zenhei; reportlab embeds TrueType outlines, which the CFF fonts
of fonts-noto-cjk are not). A line of text is split into runs by the font
that has each character. Devanagari runs are shaped with HarfBuzz
(conjuncts, reph, vowel signs placed) and carry their text as ActualText, so
a text extractor (pdftotext) gives back the name as typed.

The fonts are read once per process; `RATING_FONT_DIRS` (a colon-separated
list of folders) is searched before the system's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont, shapeStr

from rating.errors import ConfigError

SYSTEM_DIRS = ("/usr/share/fonts/truetype/noto", "/usr/share/fonts/truetype/wqy", "/usr/share/fonts/truetype",
               "/usr/local/share/fonts")
DEBIAN_PACKAGES = "fonts-noto-core fonts-wqy-zenhei"
# (reportlab name, file, collection index); the first of each pair is the regular face
FACES = {
    "Sans": ("NotoSans-Regular.ttf", 0), "Sans-Bold": ("NotoSans-Bold.ttf", 0),
    "Deva": ("NotoSansDevanagari-Regular.ttf", 0), "Deva-Bold": ("NotoSansDevanagari-Bold.ttf", 0),
    "Han": ("wqy-zenhei.ttc", 0),
}
SHAPED = frozenset({"Deva", "Deva-Bold"})


@dataclass(frozen=True)
class Faces:
    """The registered faces and the characters each has (its cmap)."""

    chars: dict[str, frozenset[int]]


def _dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("RATING_FONT_DIRS", "").split(":") if p]
    return extra + [Path(p) for p in SYSTEM_DIRS]


def _find(name: str) -> Path:
    for folder in _dirs():
        path = folder / name
        if path.is_file():
            return path
    raise ConfigError(f"font {name} not found in {', '.join(map(str, _dirs()))}; install the Debian "
                      f"packages {DEBIAN_PACKAGES} (./dev does) or set RATING_FONT_DIRS",
                      where="PDF fonts", reason="MISSING_FONT")


@lru_cache(maxsize=1)
def faces() -> Faces:
    """Register the faces with reportlab (once per process)."""
    chars = {}
    for face, (file, index) in FACES.items():
        font = TTFont(f"rating-{face}", str(_find(file)), subfontIndex=index, shapable=face in SHAPED)
        pdfmetrics.registerFont(font)
        chars[face] = frozenset(font.face.charToGlyph)
    return Faces(chars)


def _script_face(code: int, bold: bool) -> str | None:
    """The face a character needs by its script; None: any face that has it."""
    if 0x0900 <= code <= 0x097F or 0xA8E0 <= code <= 0xA8FF or code in (0x200C, 0x200D):
        return "Deva-Bold" if bold else "Deva"
    if 0x2E80 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0xFF00 <= code <= 0xFFEF:
        return "Han"
    return None


def runs(text: str, bold: bool = False) -> Iterator[tuple[str, str]]:
    """(face, text) runs of a line: each script in its face; spaces, digits
    and punctuation stay in the run they are in when its face has them, else
    go to the first face that has them."""
    known = faces().chars
    latin = "Sans-Bold" if bold else "Sans"
    face, start = None, 0
    for i, char in enumerate(text):
        code = ord(char)
        wanted = _script_face(code, bold)
        if wanted is None:
            wanted = face if face is not None and code in known[face] else _having(code, latin, known)
        if wanted != face:
            if face is not None:
                yield face, text[start:i]
            face, start = wanted, i
    if face is not None:
        yield face, text[start:]


def _having(code: int, latin: str, known: dict[str, frozenset[int]]) -> str:
    """The first face that has a character (arrows are in Zen Hei, not Noto Sans); none: Latin's."""
    return next((face for face in (latin, "Han", "Deva") if code in known[face]), latin)


def width(text: str, size: float, bold: bool = False) -> float:
    """The width of a line in points, as `draw` sets it."""
    total = 0.0
    for face, part in runs(text, bold):
        if face in SHAPED:
            shaped = shapeStr(part, f"rating-{face}", size)
            total += sum(d.x_advance for d in shaped.__shapeData__) * size / 1000
        else:
            total += pdfmetrics.stringWidth(part, f"rating-{face}", size)
    return total


def draw(canvas, x: float, y: float, text: str, size: float, *, bold: bool = False,
         align: str = "left") -> None:
    """Draw a line at (x, y): its left end there, or its right end (`align="right"`)."""
    if align == "right":
        x -= width(text, size, bold)
    out = canvas.beginText(x, y)
    for face, part in runs(text, bold):
        out.setFont(f"rating-{face}", size)
        if face in SHAPED:
            shaped = shapeStr(part, f"rating-{face}", size)
            actual = "FEFF" + part.encode("utf-16-be").hex().upper()
            out._code.append(f"/Span <</ActualText <{actual}>>> BDC")  # reportlab has no marked-content API
            out.textOut(shaped)
            out._code.append("EMC")
        else:
            out.textOut(part)
    canvas.drawText(out)
