"""``kartud``: run the daemon, or check a configuration file."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import logging
import sys
from datetime import datetime

from ..rules.config import Config, ConfigError, load

EXIT_USAGE = 2


def make_clock(config: Config):
    """The real clock, or with the simulated printer an accelerated one as ``[sim]`` asks."""
    from ..rules.clock import Clock, SimulatedClock

    if config.printer.transport == "sim" and (config.sim.clock_speed != 1.0 or config.sim.clock_start):
        start = datetime.fromisoformat(config.sim.clock_start) if config.sim.clock_start else None
        return SimulatedClock(start, config.sim.clock_speed)
    return Clock()


def check_config(path: str) -> int:
    try:
        load(path)
    except ConfigError as error:
        for key, problem in error.problems:
            print(f"{key}: {problem}")
        return EXIT_USAGE
    print(f"{path}: ok")
    return 0


def run(path: str) -> int:
    from ..service.logs import setup_logging
    from ..service.daemon import Daemon

    setup_logging()
    # When systemd's watchdog gives up on a hung daemon it sends SIGABRT: dump every thread's Python stack
    # to stderr (the journal) first, so the hang can be found. Code locations only, never data.
    faulthandler.enable()
    log = logging.getLogger("kartud")
    try:
        config = load(path)
    except ConfigError as error:
        for key, problem in error.problems:
            log.critical("config %s: %s", key, problem)
        return EXIT_USAGE
    return asyncio.run(Daemon(config, make_clock(config)).run())


def indicator_fault(path: str) -> int:
    """The OnFailure= program: systemd gave up restarting kartud, so show it on the lamp and buzzer until
    stopped (kartud.service stops this unit again when it starts)."""
    from ..service.annunciator import hold_stopped_pattern, indicator_settings
    from ..service.logs import setup_logging

    setup_logging()
    asyncio.run(hold_stopped_pattern(indicator_settings(path)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kartud", description="Controller daemon for a KTP-el / KIA card printer.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("run", "run the daemon in the foreground"),
                       ("check-config", "check a configuration file and list every problem"),
                       ("indicator-fault", "show on the lamp and buzzer that kartud has stopped (systemd's "
                                           "OnFailure= program), until SIGTERM")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--config", default="/etc/kartud/kartud.toml", help="the TOML file (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.command == "check-config":
        return check_config(args.config)
    if args.command == "indicator-fault":
        return indicator_fault(args.config)
    return run(args.config)


if __name__ == "__main__":
    sys.exit(main())
