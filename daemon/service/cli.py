"""``kartud``: run the daemon, check a configuration file, or make the station's NIK key file."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
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


def key_problem(config: Config) -> str | None:
    """What is wrong with the station's NIK key file, or None (see :mod:`kartud.ledger.station_key`)."""
    from ..ledger.station_key import KeyFileProblem, key_path, read_key

    try:
        read_key(key_path(config.store.key_file), config.path)
    except KeyFileProblem as problem:
        return str(problem)
    return None


def check_config(path: str) -> int:
    try:
        config = load(path)
    except ConfigError as error:
        for key, problem in error.problems:
            print(f"{key}: {problem}")
        return EXIT_USAGE
    problem = key_problem(config)
    # Only root and the service (through its credential) may read the key: another user cannot tell.
    if problem is not None and "not readable by this user" not in problem:
        print(f"store.key_file: {problem}")
        return EXIT_USAGE
    print(f"{path}: ok")
    return 0


def make_key(path: str) -> int:
    """``kartud make-key``: write ``store.key_file`` once (the key an older database holds, or a new one).
    Only ``[store]`` is read, so a config broken elsewhere does not stop it (install runs it on upgrades)."""
    import tomllib

    from ..ledger.station_key import make_key as write_key
    from ..rules.config import SCHEMA

    try:
        with open(path, "rb") as handle:
            store = tomllib.load(handle).get("store", {})
        key_file = store.get("key_file", SCHEMA["store"]["key_file"].default)
        db_path = store.get("path", SCHEMA["store"]["path"].default)
        if not isinstance(key_file, str) or not os.path.isabs(key_file) or not isinstance(db_path, str):
            raise ValueError("store.key_file must be an absolute path and store.path a path")
    except (OSError, tomllib.TOMLDecodeError, ValueError, AttributeError) as exc:
        print(f"kartud make-key: cannot read {path}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        print(write_key(key_file, db_path))
    except (OSError, ValueError) as exc:
        print(f"kartud make-key: cannot write {key_file}: {exc}", file=sys.stderr)
        return 1
    return 0


def leave_tls_unloaded(config: Config) -> None:
    """Without ``mqtt.tls_ca`` the daemon never speaks TLS: keep Python's ``ssl`` module, and OpenSSL's
    libssl with it, out of the process (1.1 MiB resident: idle 32.04 -> 30.90 MiB, docs/performance.md).
    asyncio and paho import ``ssl`` only if they can, so this comes before either is imported."""
    if not config.mqtt.tls_ca and "ssl" not in sys.modules:
        sys.modules["ssl"] = None       # ``import ssl`` now raises ImportError, which both expect


def run(path: str) -> int:
    from ..service.logs import setup_logging

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
    leave_tls_unloaded(config)          # before the key check: kartud.ledger imports asyncio
    problem = key_problem(config)
    if problem is not None:             # a setup problem: systemd does not restart on status 2
        log.critical("cannot start: %s", problem)
        return EXIT_USAGE
    import asyncio

    from ..service.daemon import Daemon

    return asyncio.run(Daemon(config, make_clock(config)).run())


def indicator_fault(path: str) -> int:
    """The OnFailure= program: systemd gave up restarting kartud, so show it on the lamp and buzzer until
    stopped (kartud.service stops this unit again when it starts)."""
    import asyncio

    from ..service.annunciator import hold_stopped_pattern, indicator_settings
    from ..service.logs import setup_logging

    setup_logging()
    asyncio.run(hold_stopped_pattern(indicator_settings(path)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kartud", description="Controller daemon for a KTP-el / KIA card printer.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("run", "run the daemon in the foreground"),
                       ("check-config", "check a configuration file (and the key file it names) and list every problem"),
                       ("make-key", "write the station's NIK key file (store.key_file) once: the key an older "
                                    "database holds, or a new random one; never over an existing file"),
                       ("indicator-fault", "show on the lamp and buzzer that kartud has stopped (systemd's "
                                           "OnFailure= program), until SIGTERM")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--config", default="/etc/kartud/kartud.toml", help="the TOML file (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.command == "check-config":
        return check_config(args.config)
    if args.command == "make-key":
        return make_key(args.config)
    if args.command == "indicator-fault":
        return indicator_fault(args.config)
    return run(args.config)


if __name__ == "__main__":
    sys.exit(main())
