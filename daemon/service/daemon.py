"""The daemon: one asyncio loop that owns the state and wires the store, devices, press, commands and MQTT."""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from datetime import datetime
from time import monotonic
from typing import Any

from kartud.hw.printer import FAULT_CODES as PRINTER_FAULT_CODES, PrinterFault

from .. import __version__
from ..rules.clock import Clock, rfc3339
from ..service.commands import Commands
from ..service.control_socket import ControlSocket
from ..service.intake import Intake
from ..service.journal_ids import (MSG_BLANKS_LOW, MSG_DAILY_LIMIT_REACHED, MSG_FAULT_CLEARED, MSG_FAULT_RAISED,
                          MSG_JOB_IN_DOUBT, MSG_READY, MSG_STOPPED)
from ..service.devices import build_devices
from ..rules.errors import CommandError, StorageError
from ..rules.faults import FAULT_MESSAGES, FAULTS_A_PERSON_CLEARS
from ..service.annunciator import Annunciator, open_annunciator
from ..service.mqtt_link import IncomingRequest, MqttLink
from ..service.press import Press
from ..rules.calendar import WorkingCalendar
from ..rules.scheduler import Decision, Facts, decide
from ..ledger.state_document import Live, state_document
from ..ledger.station_facts import LedgerFacts, gather as gather_facts
from ..service.eraser import Eraser
from ..service.station_store import StationStore
from ..service.supervision import Supervisor, watch_health, watch_thread
from ..service.systemd_glue import notify, watchdog_interval

log = logging.getLogger("kartud")
STATE_MIN_INTERVAL_S = 0.5     # the contract: state at most 2 a second
STATE_MAX_INTERVAL_S = 60.0    # and at least once a minute of clock time
PRESS_SETTLE_S = 0.1          # real seconds between two decisions of the press, at most ten a second
# The press's longest wait (real s), shorter while the clock is behind: a clock being set (NTP) wakes nothing else.
CLOCK_RECHECK_S, CLOCK_NOT_SET_RECHECK_S = 60.0, 2.0


async def wait_event(event: asyncio.Event, timeout: float | None) -> None:
    """Wait until ``event`` is set or ``timeout`` passes. Python 3.11's ``wait_for`` can swallow a
    cancellation that races the event (gh-86296), which left a task running after shutdown."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()


class Daemon:
    """The kartud service. ``run()`` returns the process exit status.

    It is the host its parts name at the top of their files: :class:`PressHost`, :class:`CommandsHost`,
    :class:`IntakeHost` and :class:`ControlHost` list what each may ask of it."""

    def __init__(self, config, clock: Clock | None = None):
        self.config = config
        self.clock = clock or Clock()
        self.tz = config.tz
        self.calendar = WorkingCalendar(config.limits.working_hours, config.limits.holidays, config.tz)
        self.store = StationStore(config, self.clock)
        self.printer, self.encoder = build_devices(config, self.clock)
        self.commands = Commands(self)
        self.intake = Intake(self)
        self.press = Press(self)
        self.eraser = Eraser(self)
        self.mqtt: MqttLink | None = None
        self.faults: dict[str, datetime] = {}
        self.paused_reason: str | None = None
        self.decision: Decision | None = None
        self._store_thread = ThreadPoolExecutor(1, thread_name_prefix="kartud-store")
        self._device_thread = ThreadPoolExecutor(1, thread_name_prefix="kartud-device")
        # Pillow releases the GIL while decoding, so two threads decode two submitted images at once.
        self._cpu_thread = ThreadPoolExecutor(2, thread_name_prefix="kartud-cpu")
        self._printer_info: dict[str, Any] = {"connected": False}
        self._printer_status = None
        self._encoder_info: dict[str, Any] = {"connected": False, "reader": ""}
        self._status_line = ""
        self.exit_status = 0
        self._low_blanks: set[str] = set()
        self.annunciator: Annunciator | None = None
        self.device_busy_since: float | None = None   # monotonic() start of the device call in progress
        self.store_failed = False

    # -- running work off the loop -------------------------------------------------------------

    async def db(self, fn, *args):
        """Run a store call on the store's one thread, in a copy of this task's context (the audit reads the
        request's actor from it); a failing database raises the storage_error fault."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._store_thread, copy_context().run, fn, *args)
        except (StorageError, sqlite3.Error) as exc:
            log.error("database error: %s", exc)
            self.store_failed = True            # the stop leaves no clean-stop note: the next start checks it all
            self.raise_fault("storage_error", str(exc))
            raise CommandError("storage_error", "the box cannot write its database; nothing was changed") from exc

    async def cpu(self, fn, *args):
        """Run CPU-heavy work (decoding a submitted image) off the loop, so answers keep flowing."""
        return await asyncio.get_running_loop().run_in_executor(self._cpu_thread, fn, *args)

    async def device(self, fn, *args):
        """Run a blocking device call on the device thread (one at a time, as the hardware needs)."""
        return await asyncio.get_running_loop().run_in_executor(self._device_thread, self._timed, fn, *args)

    def _device_busy(self) -> float | None:
        return self.device_busy_since

    def _timed(self, fn, *args):
        # Device thread: the watchdog reads when the call in progress began, to tell a stuck one.
        self.device_busy_since = monotonic()
        try:
            return fn(*args)
        finally:
            self.device_busy_since = None

    # -- life cycle ---------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._state_dirty = asyncio.Event()
        self._requests: asyncio.Queue[IncomingRequest] = asyncio.Queue()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop)
        try:
            await loop.run_in_executor(self._store_thread, self.store.open)
        except StorageError as exc:
            log.critical("cannot start: %s", exc)
            notify(f"STATUS=cannot start: {exc}")
            return 1
        for view in (recovered := await self.db(self.store.recover_in_doubt)):
            log.error("job %s was mid-card when kartud stopped; it is in doubt and will not be printed again by "
                      "itself: look at the card and send job/resolve", view["job_id"],
                      extra={"job": view["job_id"], "state": "in_doubt", "message_id": MSG_JOB_IN_DOUBT})
        self.paused_reason = await self.db(self.store.get_setting, "paused_reason")
        await self._poll_devices()
        if self._printer_status is not None and self._printer_status.card_inside:
            await self._reject_leftover_card(recovered)
        await self.intake.recover()     # before any request: the marks of messages the last run died holding
        self.mqtt = MqttLink(self.config, loop, self._requests.put_nowait, self._on_mqtt_connected, self.clock.now)
        for view in recovered:          # events too (contract 1.1), ahead of any answer; paho queues them
            self.job_changed(view)
        self.mqtt.start()
        self.control = ControlSocket(self, self.config.control.socket,
                                     max_payload_bytes=self.config.mqtt.max_payload_bytes)
        await self.control.start()
        self.annunciator = open_annunciator(self.config.indicator, loop)
        notify("READY=1")
        log.info("kartud %s ready: station %s, printer %s, store %s", __version__, self.config.station.id,
                 self.config.printer.transport, self.config.store.path, extra={"message_id": MSG_READY})
        # Each part runs for ever (the press until a stop); one that ends otherwise takes the daemon down.
        self.parts = Supervisor(on_failure=self._internal_error)
        tasks = [self.parts.start("the intake", self.intake.serve(self._requests)),
                 self.parts.start("the state publisher", self._publish_state()),
                 self.parts.start("the device poll", self._poll_devices_forever()),
                 self.parts.start("the eraser", self.eraser.serve()),
                 self.parts.start("the MQTT link", watch_thread(self.mqtt.network_alive)),   # paho's thread
                 self.parts.start("the watchdog", watch_health(self._store_thread, self._device_busy, self.parts),
                                  may_end=lambda: watchdog_interval() is None)]
        press_task = self.parts.start("the press", self._press_loop(), may_end=self._stopping.is_set)
        await self._stopping.wait()
        notify("STOPPING=1")
        log.info("stopping%s", f": finishing job {self.press.current_job}" if self.press.current_job else "")
        await asyncio.wait({press_task})            # however it ends, the supervisor reports it
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.control.close()
        await self.intake.put_down()
        self.mqtt.stop()
        await self.db(self.store.close, not self.store_failed)
        self._store_thread.shutdown()
        self._device_thread.shutdown()
        self._cpu_thread.shutdown()
        self.printer.close()
        if self.annunciator is not None:
            self.annunciator.close()
        log.info("stopped cleanly" if self.exit_status == 0 else "stopped after an internal error",
                 extra={"message_id": MSG_STOPPED})
        return self.exit_status

    def _internal_error(self) -> None:
        """A part died (the supervisor logged which): stop cleanly with status 1, for systemd to restart us."""
        self.exit_status = 1
        self.request_stop()

    def request_stop(self) -> None:
        self._stopping.set()
        self.press.stopping.set()                  # a card waiting at the eject stays inside (in doubt at start)
        self._wake.set()

    # -- the press ----------------------------------------------------------------------------

    async def _press_loop(self) -> None:
        next_expiry = await self.db(self.store.next_expiry)
        while not self._stopping.is_set():
            self._wake.clear()
            now = self.clock.now()
            if next_expiry is not None and now >= next_expiry:
                for view in await self.db(self.store.expire_due, now):
                    self.job_changed(view)
            next_expiry = await self.db(self.store.next_expiry)
            decision = await self._decide()
            if decision.may_start:
                job = await self.db(self.store.next_queued, list(decision.card_types))
                if job is not None:
                    await self.press.run(job)
                    continue
            wait = CLOCK_NOT_SET_RECHECK_S if decision.reason == "clock_not_set" else CLOCK_RECHECK_S
            for instant in (decision.next_print_at, next_expiry):
                if instant is not None:
                    wait = min(wait, self.clock.real_seconds((instant - self.clock.now()).total_seconds()))
            await wait_event(self._wake, max(wait, 0.05))
            # A burst of submissions wakes us once per job: decide at most every PRESS_SETTLE_S, so the
            # cost of deciding does not grow with the burst.
            await wait_event(self._stopping, min(PRESS_SETTLE_S, self.clock.real_seconds(1.0)))

    async def _facts(self) -> tuple[Facts, LedgerFacts]:
        now = self.clock.now().astimezone(self.tz)
        ledger = await self.db(gather_facts, self.store, now, self.tz, self.clock.monotonic(), self.clock.boot_id)
        limits = self.config.limits
        facts = Facts(now=now, paused=self.paused_reason is not None,
                      printer_faults=tuple(f for f in self.faults if f in PRINTER_FAULT_CODES + FAULTS_A_PERSON_CLEARS),
                      encoder_fault="encoder_disconnected" in self.faults, queued_by_type=ledger.queued_by_type,
                      in_doubt=ledger.counts["in_doubt"], in_stock={t: s["in_stock"] for t, s in ledger.stock.items()},
                      started_today=ledger.started_today, daily_limit=limits.daily,
                      in_press=self.press.current_job is not None, cards_since_cleaning=ledger.cards_since_cleaning,
                      cleaning_every=limits.cleaning_every, calendar=self.calendar, pacing=limits.pacing,
                      last_start=ledger.last_start, clock_behind=ledger.clock_behind, day_ends_at=ledger.day_ends_at)
        return facts, ledger

    async def _decide(self) -> Decision:
        facts, _ = await self._facts()
        decision = decide(facts)
        if self.decision is None or (decision.mode, decision.reason) != (self.decision.mode, self.decision.reason):
            # Printing and waiting for the pacing interval alternate every card: keep those off the journal.
            routine = {decision.reason, self.decision.reason if self.decision else "x"} <= {None, "pacing"}
            extra: dict[str, Any] = {"state": decision.mode}
            if decision.reason == "daily_limit_reached":
                extra.update(message_id=MSG_DAILY_LIMIT_REACHED, count=facts.started_today)
            log.log(logging.DEBUG if routine else logging.INFO, "station %s%s%s", decision.mode,
                    f" ({decision.reason})" if decision.reason else "",
                    f", next card at {rfc3339(decision.next_print_at, self.tz)}" if decision.next_print_at
                    and decision.mode != "printing" else "", extra=extra)
            self._state_dirty.set()
        self.decision = decision
        return decision

    # -- what the office sees -----------------------------------------------------------------

    async def state_document(self) -> dict[str, Any]:
        """The contract's state document, read fresh from the store."""
        facts, ledger = await self._facts()
        decision = decide(facts)
        live = Live(mode=decision.mode, reason=decision.reason, next_print_at=decision.next_print_at,
                    faults=self.faults, printer=self._printer_info, encoder=self._encoder_info,
                    office_link=self.mqtt.link.status(self.tz) if self.mqtt is not None else None)
        return state_document(self.config, ledger, facts.now, self.paused_reason, live)

    def job_changed(self, view: dict[str, Any]) -> None:
        """A job changed state (committed): tell the office, refresh the state, wake the press."""
        if self.mqtt is not None:
            self.mqtt.publish("event/job", {"event": "job", "at": rfc3339(self.clock.now(), self.tz), "job": view})
        self._state_dirty.set()
        self._wake.set()

    def stock_changed(self) -> None:
        self._state_dirty.set()
        self._wake.set()

    async def set_paused(self, reason: str | None) -> None:
        """Pause (with a reason) or resume (None); kept in the store so a restart stays paused."""
        changed = await self.db(self.store.set_setting, "paused_reason", reason,
                                "queue_paused" if reason else "queue_resumed", {"reason": reason})
        self.paused_reason = reason
        if changed:
            log.info("queue %s", "paused" if reason else "resumed")
        for code in () if reason else FAULTS_A_PERSON_CLEARS:    # resuming is the person's word that it is right
            self.clear_fault(code)
        self.stock_changed()

    def raise_fault(self, code: str, detail: str = "") -> None:
        if code in self.faults:
            return
        self.faults[code] = self.clock.now()
        log.error("fault raised: %s: %s", code, FAULT_MESSAGES.get(code, detail),
                  extra={"fault": code, "message_id": MSG_FAULT_RAISED})
        self._fault_event(code, True)

    def clear_fault(self, code: str) -> None:
        if self.faults.pop(code, None) is not None:
            log.info("fault cleared: %s", code, extra={"fault": code, "message_id": MSG_FAULT_CLEARED})
            self._fault_event(code, False)

    def _fault_event(self, code: str, active: bool) -> None:
        if self.mqtt is not None:
            self.mqtt.publish("event/fault", {"event": "fault", "at": rfc3339(self.clock.now(), self.tz),
                                              "code": code, "active": active,
                                              "message": FAULT_MESSAGES.get(code, code)})
        self._state_dirty.set()
        self._wake.set()

    def printer_fault(self, fault: PrinterFault) -> None:
        self.raise_fault(fault.code, str(fault))

    def _on_mqtt_connected(self) -> None:
        # After every (re)connect the office gets a fresh state at once; a lost link changes the lamp.
        self._state_dirty.set()

    async def _publish_state(self) -> None:
        loop = asyncio.get_running_loop()
        last = None
        while True:
            await wait_event(self._state_dirty, self.clock.real_seconds(STATE_MAX_INTERVAL_S))
            if last is not None:
                await asyncio.sleep(max(0.0, last + STATE_MIN_INTERVAL_S - loop.time()))
            self._state_dirty.clear()
            document = await self.state_document()
            last = loop.time()
            self.mqtt.publish("state", document, retain=True)
            self._update_status_line(document)
            if self.annunciator is not None:
                self.annunciator.update_from_state(document)
            self._note_low_blanks(document)

    def _note_low_blanks(self, doc: dict[str, Any]) -> None:
        """Log once when a card type's blanks fall below blanks.low_threshold (again after a refill)."""
        low = {card_type for card_type, blanks in doc["blanks"].items() if blanks["low"]}
        for card_type in sorted(low - self._low_blanks):
            left = doc["blanks"][card_type]["in_stock"]
            log.warning("blanks of %s are low: %d left (blanks.low_threshold = %d)", card_type, left,
                        self.config.blanks.low_threshold,
                        extra={"card_type": card_type, "count": left, "message_id": MSG_BLANKS_LOW})
        self._low_blanks = low

    def _update_status_line(self, doc: dict[str, Any]) -> None:
        blanks = ", ".join(f"{b['in_stock']} {t} blanks" for t, b in doc["blanks"].items())
        line = (f"{doc['mode']}{' (' + doc['reason'] + ')' if doc['reason'] else ''} "
                f"{doc['today']['printed']}/{doc['today']['limit']} today, {doc['queue']['queued']} queued, {blanks}")
        link = doc.get("office_link") or {}
        if link.get("connected") is False and link.get("last_error"):     # systemctl status shows it too
            line += f"; office link down: {link['last_error']}"
        if line != self._status_line:
            self._status_line = line
            notify(f"STATUS={line}")

    # -- requests -----------------------------------------------------------------------------

    async def answer(self, command: str, raw: bytes, retained: bool = False, topic: str | None = None) -> dict[str, Any]:
        """The full response to one raw request, for any transport (see :meth:`Intake.answer`)."""
        return await self.intake.answer(command, raw, retained, topic)

    # -- devices ------------------------------------------------------------------------------

    async def _reject_leftover_card(self, recovered: list[dict]) -> None:
        """A card left inside by the run that died goes to the reject box, charged to the one job that was
        mid-card (no job starts while it cannot be moved) or, with none, to nobody; job/resolve settles it."""
        if len(recovered) == 1:
            self.press.card_left_by = recovered[0]["job_id"]
            await self.press.take_out_card_left()
            return
        try:
            await self.device(self.printer.reject)
            log.warning("a card was still inside the printer at start; it was sent to the reject box")
        except PrinterFault as fault:
            log.error("a card is still inside the printer and could not be sent to the reject box (%s); "
                      "take it out by hand", fault.code)
            self.printer_fault(fault)

    async def _poll_devices(self) -> None:
        status = await self.device(self.printer.status)
        self._printer_status = status
        self._printer_info = status.as_dict()
        for code in PRINTER_FAULT_CODES:
            if code in status.faults:
                self.raise_fault(code)
            elif code in self.faults and self.press.current_job is None:
                self.clear_fault(code)
        if self.encoder is not None:
            encoder = await self.device(self.encoder.status)
            self._encoder_info = encoder.as_dict()
            if not encoder.connected:
                self.raise_fault("encoder_disconnected")
            elif self.press.current_job is None:
                self.clear_fault("encoder_disconnected")

    async def _poll_devices_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.printer.status_poll_s)
            if self.press.current_job is None:
                await self._poll_devices()
