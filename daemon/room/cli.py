"""``kartud-sim``: the simulated print room (``demo``), the printer simulator (``printer``), storms, fake jobs."""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys

from kartud.hw.printer.knowledge import PANEL_HEIGHT, PANEL_ROTATIONS, PANEL_WIDTH, STATUS_COMMAND

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _geometry(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match:
        raise argparse.ArgumentTypeError("must be WIDTHxHEIGHT in dots, such as 648x1016")
    return int(match.group(1)), int(match.group(2))


def _vpcd_address(text: str) -> tuple[str, int]:
    from kartud.hw.sim.vpcd_link import parse_address

    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _add_printer_parser(commands) -> None:
    printer = commands.add_parser(
        "printer", help="a simulated Evolis printer on a pty, for printer.transport = \"serial\"",
        description="Runs a simulated Evolis card printer on a pseudo-terminal until SIGTERM. Point the daemon's "
                    "printer.serial_port at PATH. Cards that leave it are recorded in DIR/cards.jsonl.")
    printer.add_argument("--pty", required=True, metavar="PATH", help="symlink to create to the pty's device")
    printer.add_argument("--output-dir", default="sim-output", metavar="DIR",
                         help="where cards.jsonl and <seq>-front.png go (default: %(default)s)")
    printer.add_argument("--feeder", type=int, default=100, metavar="N", help="blanks in the feeder (default: 100)")
    printer.add_argument("--seconds-per-card", type=float, default=15.0, metavar="S",
                         help="time a card takes, feed to eject; every other time of the simulator (head "
                              "cooling, cleaning) scales with it (default: 15, a real printer's pace)")
    printer.add_argument("--no-chip", action="store_true", help="blanks without a chip (KIA)")
    printer.add_argument("--panel-geometry", type=_geometry, default=(PANEL_WIDTH, PANEL_HEIGHT), metavar="WxH",
                         help="panel size in dots; must match printer.panel_width/height (default: 648x1016)")
    printer.add_argument("--panel-rotation", type=int, choices=PANEL_ROTATIONS, default=270,
                         help="must match printer.panel_rotation (default: 270)")
    printer.add_argument("--status-command", default=STATUS_COMMAND,
                         help="the status-words read it answers; '' for none (default: Rst)")
    printer.add_argument("--firmware", default="kartud", metavar="NAME",
                         help="firmware profile: whose replies it gives (kartud, guide2003, kiosk, dll; "
                              "docs/printer.md; default: kartud)")
    printer.add_argument("--vpcd", metavar="HOST:PORT", type=_vpcd_address,
                         help="present the chip card parked at the contactless station to pcscd through the vpcd "
                              "virtual reader listening there (Debian's vsmartcard-vpcd: 127.0.0.1:35963), for "
                              'encoder.backend = "pcsc"')
    printer.add_argument("--control", metavar="SOCKET",
                         help="for tests: a Unix socket taking 'inject FAULT', 'clear FAULT', 'arm STEP FAULT', "
                              "'unplug' and 'replug' lines (chip faults: arm encode "
                              "chip_write_refused|chip_leaves_field)")


def _add_storm_parser(commands) -> None:
    storm = commands.add_parser(
        "storm", help="a seeded storm of requests and faults against a real room, checked after every phase",
        description="Runs kartud, mosquitto, pcscd and the pty printer simulator, and drives them with operations "
                    "drawn from SEED: office requests valid, duplicate and hostile, cancels and resolves racing "
                    "the press, daemon kills and power cuts, broker and pcscd restarts, printer faults, unplugs "
                    "and wall-clock jumps. After every phase the ledger is checked against the cards that left "
                    "the printer and what the office was told. The same seed replays the same operations "
                    "(docs/storm.md). Exits 1 on a violation, printing the seed and the operation number.")
    storm.add_argument("--seed", type=int, default=None, help="the seed (default: a random one, printed first)")
    storm.add_argument("--minutes", type=float, default=3.0, help="how long to storm (default: %(default)s)")
    storm.add_argument("--output-dir", default="storm-output", metavar="DIR",
                       help="where the room's files, logs and cards go (default: %(default)s)")
    # For tests (docs/storm.md): a JSON list of operations played instead of the seed's plan.
    storm.add_argument("--ops-file", default=None, help=argparse.SUPPRESS)


def run_printer(args) -> int:
    """Serve a simulated printer on ``args.pty`` until SIGTERM or SIGINT; return the exit status."""
    from kartud.hw.printer.panels import PanelSettings
    from kartud.hw.sim.evolis_sim import EvolisSim, SimSettings
    from kartud.hw.sim.output import CardOutput
    from kartud.hw.sim.pty_server import PtyServer

    from ..rules.clock import Clock

    logging.basicConfig(level=logging.INFO, format="kartud-sim printer: %(message)s", stream=sys.stderr)
    width, height = args.panel_geometry
    try:
        settings = SimSettings(seconds_per_card=args.seconds_per_card, feeder_cards=args.feeder,
                               chip_cards=not args.no_chip, status_command=args.status_command,
                               firmware_profile=args.firmware,
                               panels=PanelSettings(width=width, height=height, rotation=args.panel_rotation))
    except ValueError as exc:
        print(f"kartud-sim printer: {exc}", file=sys.stderr)
        return 2
    # SIGTERM and SIGINT are blocked before any thread starts (threads inherit the mask) and taken by sigwait
    # below. A Python handler would run only once the main thread woke, and the kernel may hand the signal to
    # a server thread while the main thread sleeps in a wait with no end: the printer then never stopped.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    sim = EvolisSim(Clock(), CardOutput(os.path.abspath(args.output_dir)), settings)
    link = control = None
    if args.vpcd:
        from kartud.hw.sim.vpcd_link import VpcdLink

        link = VpcdLink(*args.vpcd)
        sim.station_listeners.append(link)
        logging.getLogger("kartud.sim").info("chip cards at the contactless station go to vpcd at %s:%d", *args.vpcd)
    server = PtyServer(sim, args.pty)
    try:
        if args.control:
            from kartud.hw.sim.sim_control import ControlServer

            # The cable is known before the pty exists: a command sent once the printer says it is on finds it.
            control = ControlServer(sim, args.control, cable=server)
        server.start()
    except OSError as exc:
        if control is not None:
            control.close()
        print(f"kartud-sim printer: cannot make the pty at {args.pty} or the control socket: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    try:
        signal.sigwait(STOP_SIGNALS)
    finally:
        server.stop()
        for part in (control, link):
            if part is not None:
                part.close()
    return 0


def _print_fake_job(card_type: str, serial: int) -> int:
    import json
    import random

    from ..room.fake_people import fake_job

    try:
        print(json.dumps(fake_job(random.Random(serial), serial, card_type), separators=(",", ":")), flush=True)
    except BrokenPipeError:         # piped into something that stopped reading (head): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kartud-sim", description="Simulators for trying kartud without hardware.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a simulated print room: broker, daemon, 30 fake jobs")
    demo.add_argument("--output-dir", default="demo-output", help="where cards, logs and the database go "
                                                                  "(emptied first; default: %(default)s)")
    demo.add_argument("--jobs", type=int, default=None, help="how many jobs to submit (default: 30; 250 with "
                                                             "--full-day)")
    demo.add_argument("--clock-speed", type=float, default=None, help="simulated seconds per real second "
                                                                      "(default: 60; 400 with --full-day)")
    demo.add_argument("--full-day", action="store_true", help="one working day with 250 jobs queued: the daily "
                                                              "limit, even pacing, and a per-hour histogram")
    _add_printer_parser(commands)
    _add_storm_parser(commands)
    fake = commands.add_parser("fake-job", help="print one job/submit payload (JSON) for a fake person, NIK region "
                                                "99: for trying a box by hand, e.g. with mosquitto_pub -f")
    fake.add_argument("--card-type", choices=("KTP_EL", "KIA"), default="KTP_EL", help="default: %(default)s")
    fake.add_argument("--serial", type=int, default=1, help="which fake person, job_id (j-demo-<serial>) and "
                                                            "record_id; the same serial gives the same job")
    args = parser.parse_args(argv)
    if args.command == "fake-job":
        return _print_fake_job(args.card_type, args.serial)
    if args.command == "printer":
        return run_printer(args)
    if args.command == "storm":
        from ..room.storm import run_storm

        return run_storm(args.seed, args.minutes, args.output_dir, args.ops_file)
    from ..room.demo import run_demo, run_full_day

    try:
        if args.full_day:
            return run_full_day(args.output_dir, jobs=args.jobs or 250, clock_speed=args.clock_speed or 400.0)
        return run_demo(args.output_dir, jobs=args.jobs or 30, clock_speed=args.clock_speed or 60.0)
    except KeyboardInterrupt:
        print("\ninterrupted; everything the demo started has been stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
