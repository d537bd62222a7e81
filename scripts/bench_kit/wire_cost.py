"""The device thread's CPU for a card's commands over a serial line (a pty), its face rendering left out (issue 18).

The simulated printer serves the pty from this process (its own thread); the figure is ``time.thread_time``
of the thread that drives the card: Pem, Pr, Ss, Si, Rlr;p, Sr, five panel downloads (1.7 MB), Se, Rlr;p,
four Rco reads, Pem, and one status poll (eight reads) a card. ``--transport FILE`` loads another
``transport.py`` (an older one) in place of ``kartud.hw.printer.transport``, for before/after in one run.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kartud.hw.printer import evolis  # noqa: E402
from kartud.hw.printer.panels import PanelSettings, render_face  # noqa: E402
from kartud.hw.sim.evolis_sim import EvolisSim, SimSettings  # noqa: E402
from kartud.hw.sim.head import HeadSettings  # noqa: E402
from kartud.hw.sim.pty_server import PtyServer  # noqa: E402
from kartud.rules.clock import Clock  # noqa: E402

from face_cost import faces  # noqa: E402


def serial_transport_class(path: str | None):
    """``SerialTransport`` from ``path`` (a transport.py), or the installed one."""
    if path is None:
        from kartud.hw.printer.transport import SerialTransport
        return SerialTransport
    spec = importlib.util.spec_from_file_location("transport_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    evolis.TransportGone = module.TransportGone        # the driver catches the module's own exception
    return module.SerialTransport


def cards_cpu_ms(transport_class, cards: int, directory: str) -> float:
    """Device-thread CPU ms a card for ``cards`` cards, panels rendered beforehand."""
    sim = EvolisSim(Clock(), None, SimSettings(seconds_per_card=0.0, feeder_cards=cards + 5, hopper_capacity=100_000,
                                               chip_cards=False, panels=PanelSettings(),
                                               head=HeadSettings(rise_per_card_c=0.0)))
    server = PtyServer(sim, os.path.join(directory, "ttyEVOLIS")).start()
    face = faces(1)[0]
    panels = render_face(face, PanelSettings())
    evolis.render_face = lambda _face, _settings: panels      # only the wire is measured
    printer = evolis.EvolisPrinter(transport_class(server.link_path, 115200))
    try:
        printer.status()
        began = time.thread_time()
        for _ in range(cards):
            printer.insert_card(False)
            printer.print_card(face, None)
            printer.eject()
            printer.status()
        return (time.thread_time() - began) / cards * 1e3
    finally:
        printer.close()
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench_kit/wire_cost.py", description=__doc__)
    parser.add_argument("--cards", type=int, default=20)
    parser.add_argument("--transport", help="another transport.py to measure (e.g. git show HEAD~1:...)")
    args = parser.parse_args()
    transport_class = serial_transport_class(args.transport)
    with tempfile.TemporaryDirectory() as directory:
        load = os.getloadavg()[0]
        ms = cards_cpu_ms(transport_class, args.cards, directory)
    print(f"load {load:.1f}: {ms:.2f} ms device-thread CPU a card on the wire ({args.cards} cards, "
          f"{args.transport or 'kartud.hw.printer.transport'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
