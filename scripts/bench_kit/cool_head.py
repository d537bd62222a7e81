"""``kartud`` whose simulated print head never overheats: the per-card phase prints hundreds of cards in a row,
and the real head's cooling pauses (minutes of idle waiting, no CPU) would only stretch the run."""

import sys

from kartud.service.cli import main
from kartud.hw.sim.head import HeadSettings

# HeadSettings is a frozen dataclass: its defaults live in __init__; no heating per card.
ambient, _, time_constant, limit, resume = HeadSettings.__init__.__defaults__
HeadSettings.__init__.__defaults__ = (ambient, 0.0, time_constant, limit, resume)
sys.exit(main(sys.argv[1:]))
