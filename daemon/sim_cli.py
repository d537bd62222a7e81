"""``kartud-sim``: the simulated print room (``demo``) and, later, the printer simulator as its own process."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kartud-sim", description="Simulators for trying kartud without hardware.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a simulated print room: broker, daemon, 30 fake jobs")
    demo.add_argument("--output-dir", default="demo-output", help="where cards, logs and the database go "
                                                                  "(emptied first; default: %(default)s)")
    demo.add_argument("--jobs", type=int, default=30, help="how many jobs to submit (default: %(default)s)")
    demo.add_argument("--clock-speed", type=float, default=60.0, help="simulated seconds per real second")
    commands.add_parser("printer", help="the printer simulator on a pty (not in this version yet)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        try:
            return run_demo(args.output_dir, jobs=args.jobs, clock_speed=args.clock_speed)
        except KeyboardInterrupt:
            print("\ninterrupted; everything the demo started has been stopped", file=sys.stderr)
            return 130
    print("kartud-sim printer: the stand-alone printer simulator is not part of this version yet; "
          'use printer.transport = "sim" (in-process) meanwhile', file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
