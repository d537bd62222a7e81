"""The simulated printer's feeder: a stack of blanks, each with a chip or without, fed from the top."""

from __future__ import annotations

from collections import deque


class Feeder:
    """The blanks in the feeder, in the order they will be fed; each is True (a chip blank) or False.

    A station that prints both card types holds one kind at a time, and a person may load the
    wrong one: :meth:`load` puts blanks of either kind on the stack. Setting :attr:`count`
    (what a refill or an empty feeder does) adds or takes blanks of the ``refill_chip`` kind.

    >>> feeder = Feeder(2, chip=True)
    >>> feeder.load(1, chip=False, first=True)
    >>> feeder.next_has_chip(), feeder.count
    (False, 3)
    >>> [feeder.take() for _ in range(3)], feeder.count
    ([False, True, True], 0)
    """

    def __init__(self, count: int, chip: bool):
        self.refill_chip = chip
        self._blanks: deque[bool] = deque([chip] * count)

    @property
    def count(self) -> int:
        """How many blanks the feeder holds."""
        return len(self._blanks)

    @count.setter
    def count(self, value: int) -> None:
        while len(self._blanks) > max(0, value):
            self._blanks.popleft()
        while len(self._blanks) < value:
            self._blanks.append(self.refill_chip)

    def load(self, count: int, chip: bool, first: bool = False) -> None:
        """Put ``count`` blanks of one kind in: behind those already there, or in front (``first``)."""
        for _ in range(count):
            if first:
                self._blanks.appendleft(chip)
            else:
                self._blanks.append(chip)

    def next_has_chip(self) -> bool | None:
        """Whether the blank fed next carries a chip; None when the feeder is empty."""
        return self._blanks[0] if self._blanks else None

    def take(self) -> bool:
        """Feed the top blank; whether it carries a chip."""
        return self._blanks.popleft()
