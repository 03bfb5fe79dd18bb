"""A progress line on stderr for long runs; silent when stderr is no terminal.

```python
with Progress(total=count_readings(path)) as progress:
    for batch in batches:
        ...
        progress(batch.num_rows)      # or progress.update(n)
```

It appears only after `delay_s` (short runs print nothing), redraws at most
every `interval_s`, and erases itself when closed. `total` may be None when
the input does not say how long it is (CSV, streams): it then shows the
count and the rate only.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 24


class Progress:
    def __init__(
        self,
        total: int | None = None,
        *,
        label: str = "readings",
        stream: TextIO | None = None,
        enabled: bool | None = None,
        delay_s: float = 1.0,
        interval_s: float = 0.2,
        clock=time.monotonic,
    ) -> None:
        self.total = total
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.done = 0
        self._clock = clock
        self._start = clock()
        self._delay_s = delay_s
        self._interval_s = interval_s
        self._last_draw: float | None = None
        self._width = 0

    def __call__(self, rows: int) -> None:
        self.update(rows)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, rows: int) -> None:
        """Count `rows` more readings done."""
        self.done += rows
        if not self.enabled:
            return
        now = self._clock()
        if now - self._start < self._delay_s:
            return
        if self._last_draw is not None and now - self._last_draw < self._interval_s:
            return
        self._last_draw = now
        self._draw(self.line(now))

    def line(self, now: float | None = None) -> str:
        """The text of the progress line at `now`."""
        elapsed = max((self._clock() if now is None else now) - self._start, 1e-9)
        rate = f"{_si(self.done / elapsed)} {self.label}/s"
        if not self.total:
            return f"{_si(self.done)} {self.label}  {rate}  {elapsed:.0f} s"
        fraction = min(self.done / self.total, 1.0)
        filled = int(fraction * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        left = (self.total - self.done) / (self.done / elapsed) if self.done else 0.0
        return (
            f"[{bar}] {fraction:4.0%} {_si(self.done)}/{_si(self.total)} {self.label}  "
            f"{rate}  {max(left, 0):.0f} s left"
        )

    def close(self) -> None:
        """Erase the line, if one was drawn."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def _draw(self, text: str) -> None:
        pad = max(self._width - len(text), 0)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)


def _si(number: float) -> str:
    """12.3k, 4.56M: short, for a progress line."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if number >= limit:
            return f"{number / limit:.3g}{suffix}"
    return f"{number:.0f}"
