"""One card's way through the printer: claim, feed, encode, print, eject, each step committed before the next."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol, runtime_checkable

from kartud.hw.encoder import EncodeError
from kartud.hw.printer import PrinterFault

from ..service.crashpoints import crash_point
from ..rules.card_types import has_chip
from ..rules.faults import CHIP_ABSENT_AFTER_S, EJECT_WAITS_FOR, blank_type
from ..rules.jobs import job_view
from ..service.journal_ids import MSG_CARD_REJECTED, MSG_JOB_IN_DOUBT, MSG_JOB_PRINTED
from ..ledger.store import OutOfBlanks, PersonalDataMissing

if TYPE_CHECKING:
    from kartud.hw.encoder import Encoder
    from kartud.hw.printer import Printer

    from ..ledger.store import Store
    from ..rules.config import Config

log = logging.getLogger("kartud.press")


@runtime_checkable
class PressHost(Protocol):
    """What the press needs from the service (the :class:`~kartud.service.daemon.Daemon` is one)."""

    config: Config                  # for limits.max_attempts
    store: Store
    printer: Printer
    faults: dict                    # the faults raised now, by code
    encoder: Encoder | None         # None: no chip encoder, KTP-el cards print without a chip

    async def db(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a store call on the store's one thread."""

    async def device(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking printer or encoder call on the device thread."""

    def job_changed(self, view: dict[str, Any]) -> None:
        """A job's change was committed: tell the office and refresh the state."""

    def stock_changed(self) -> None:
        """The blank stock changed: refresh the state and wake the scheduler."""

    def raise_fault(self, code: str, detail: str = "") -> None:
        """Raise the fault ``code`` (once) until a device poll clears it."""

    def printer_fault(self, fault: PrinterFault) -> None:
        """Raise the fault a failed printer call reported."""

    def clear_fault(self, code: str) -> None:
        """Clear the fault ``code`` (the press saw it put right)."""


class Press:
    """Runs one job at a time on the printer and encoder.

    The job is claimed (``printing``, a blank reserved, committed) before the printer feeds a
    blank, and is ``printed`` only after the card left the printer. A crash in between leaves it
    ``printing``, which the next start turns into ``in_doubt``: never printed again by itself.
    """

    def __init__(self, host: PressHost):
        self.host = host
        self.current_job: str | None = None
        # The job whose card may still be inside the printer: it went in doubt with the printer unreachable or
        # the card stuck. A card found inside before the next feed is that job's, never the next job's.
        self.card_left_by: str | None = None
        self.stopping = asyncio.Event()       # set by the daemon's stop: a wait at the eject ends
        # Tests only: awaited at each named point ("before_claim", "after_claim", "claim_refused") with the
        # job, so a test can hold the press there and force an interleaving (see tests/held_press.py).
        self.hold: Callable[[str, dict], Awaitable[None]] | None = None

    async def run(self, job: dict) -> None:
        """Claim ``job`` (chosen by the scheduler) and take its card through the printer."""
        host, store = self.host, self.host.store
        job_id = job["job_id"]
        if self.card_left_by is not None and not await self.take_out_card_left():
            return
        await self._point("before_claim", job)
        try:
            claimed = await host.db(store.claim, job_id)
        except OutOfBlanks:
            claimed = None
            host.stock_changed()
        except PersonalDataMissing as lost:
            log.error("job %s cannot be printed: its personal data is missing (the personal-data file was lost "
                      "or restored from an older copy); it failed, send it again", job_id, extra={"job": job_id})
            host.job_changed(lost.view)
            return
        if claimed is None:
            # Chosen, then changed by a request before the claim (cancelled, paused, the blanks taken out,
            # not_after passed): nothing moved; the loop decides afresh.
            log.info("job %s did not start: it changed after it was chosen", job_id, extra={"job": job_id})
            await self._point("claim_refused", job)
            return
        self.current_job = job_id
        crash_point("after_claim")
        try:
            host.job_changed(job_view(claimed))
            await self._point("after_claim", claimed)
            await self._card_way(claimed)
        finally:
            self.current_job = None

    async def _point(self, name: str, job: dict) -> None:
        if self.hold is not None:
            await self.hold(name, job)

    async def _card_way(self, job: dict) -> None:
        host, store, job_id = self.host, self.host.store, job["job_id"]
        printer, encoder = host.printer, host.encoder
        chip = has_chip(job["card_type"]) and encoder is not None
        # With an encoder every blank stops at the contactless station first, to be checked for a chip; a card
        # without a chip needs no encoder, so while it is away such a blank is printed unchecked.
        check = chip or (encoder is not None and "encoder_disconnected" not in host.faults)
        try:
            await host.device(printer.insert_card, check)
        except PrinterFault as fault:
            host.printer_fault(fault)
            await self._feed_failed(job_id, fault)
            return
        crash_point("after_feed")
        card_uid = None
        try:
            # Nothing is written on a blank for a card without a chip: its UID only says a chip is there.
            if check and not chip and await host.device(encoder.encode_unless_no_chip, {}, CHIP_ABSENT_AFTER_S):
                await self._wrong_blank(job, True)      # a chip blank for a card without a chip
                return
            if chip:
                host.job_changed(await host.db(store.set_step, job_id, "encoding"))
                card_uid = await host.device(encoder.encode_unless_no_chip, job["chip_files"])
                if card_uid is None:
                    await self._wrong_blank(job, False)     # no chip came: a blank without one, for a chip card
                    return
                crash_point("after_encode")
                await self._point("after_encode", job)
                if not await self._card_still_inside():
                    await self._in_doubt(job_id, "card_gone_after_encode")
                    return
            host.job_changed(await host.db(store.set_step, job_id, "printing"))
            await host.device(printer.print_card, job["front_png"], job["back_png"])
            crash_point("after_print")
            host.job_changed(await host.db(store.set_step, job_id, "ejecting"))
            if not await self._eject(job_id):
                return                        # stopping with the card inside: in doubt at the next start
            crash_point("after_eject")        # the card is out, the ledger does not know yet
        except EncodeError as error:
            log.warning("job %s: the chip could not be encoded (%s); the card goes to the reject box", job_id,
                        error.kind, extra={"job": job_id})
            if error.kind in ("reader_gone", "service_gone"):
                # At once, not at the next poll: the scheduler must not feed another chip blank meanwhile.
                host.raise_fault("encoder_disconnected", str(error))
            # Files too large for the chip fit no other blank either: the job fails after this one.
            await self._spoil(job_id, "chip_too_large" if error.kind == "chip_too_large" else "encode_failed")
            return
        except PrinterFault as fault:
            log.warning("job %s: the printer failed (%s)", job_id, fault.code, extra={"job": job_id})
            host.printer_fault(fault)
            await self._spoil(job_id, fault.code, check_first=fault.code == "printer_disconnected")
            return
        except ValueError as error:
            # The driver could not turn the face into panels (intake decodes every image, so this is rare).
            log.error("job %s: the face cannot be printed (%s); the card goes to the reject box", job_id, error,
                      extra={"job": job_id})
            await self._spoil(job_id, "unprintable_face")
            return
        view = await host.db(store.mark_printed, job_id, card_uid)
        crash_point("after_printed")
        host.job_changed(view)
        log.info("job %s printed", job_id, extra={"job": job_id, "record": job["record_id"], "card_type": job["card_type"],
                                                  "message_id": MSG_JOB_PRINTED})

    async def _wrong_blank(self, job: dict, found: bool) -> None:
        """The blank at the contactless station is not of the job's type (``found``: it has a chip). It goes
        to the reject box unprinted, is spoiled as its real type, the job goes back to the queue without an
        attempt counted, and ``wrong_blank`` holds the station for a person."""
        host, job_id = self.host, job["job_id"]
        real = blank_type(found)
        try:
            await host.device(host.printer.reject)
        except PrinterFault as fault:                   # stuck (a jam looks like a blank without a chip)
            host.printer_fault(fault)
            await self._in_doubt(job_id, f"reject_failed:{fault.code}")
            return
        log.error("job %s: the blank fed is a %s blank, not a %s blank; it went to the reject box unprinted and the "
                  "station waits for the right blanks", job_id, real, job["card_type"], extra={"job": job_id})
        host.raise_fault("wrong_blank", f"a {real} blank in the feeder for a {job['card_type']} job")
        host.job_changed(await host.db(host.store.wrong_blank, job_id, real))
        host.stock_changed()

    async def _eject(self, job_id: str) -> bool:
        """``Se``. A refusal that leaves the finished card inside until a person acts (the output hopper full,
        the cover open) is waited out, and then the same card goes to the output: it is never rejected and
        its record never printed again. False: the daemon is stopping with the card still inside."""
        host, waited = self.host, None
        while True:
            try:
                await host.device(host.printer.eject)
            except PrinterFault as fault:
                if fault.code not in EJECT_WAITS_FOR:
                    raise
                if waited is None:
                    log.warning("job %s: the printer cannot eject the finished card (%s); it waits inside until "
                                "that is put right", job_id, fault.code, extra={"job": job_id})
                waited = fault.code
                host.printer_fault(fault)
                try:
                    await asyncio.wait_for(self.stopping.wait(), host.config.printer.status_poll_s)
                    return False
                except asyncio.TimeoutError:
                    continue                  # try the eject again: a printer may not report the hopper itself
            if waited is not None:
                host.clear_fault(waited)
            return True

    async def take_out_card_left(self) -> bool:
        """Before the next feed, after a job went in doubt with its card perhaps still inside: a card found
        inside is that job's; it goes to the reject box and that job's in-doubt episode records it. False:
        the printer cannot be asked or the card cannot be moved (a fault is raised): no job starts."""
        host, owner = self.host, self.card_left_by
        status = await self._status()
        if status is None or not status.connected:
            host.raise_fault("printer_disconnected")
            return False
        if status.card_inside:
            try:
                await host.device(host.printer.reject)
            except PrinterFault as fault:
                host.printer_fault(fault)
                await asyncio.sleep(host.config.printer.status_poll_s)    # no tight loop while it holds
                return False
            await host.db(host.store.note_card_rejected, owner, "found_inside_after_reconnect")
            log.warning("job %s: its card was still inside the printer; it is in the reject box (the job stays in "
                        "doubt: resolve it spoiled)", owner, extra={"job": owner, "message_id": MSG_CARD_REJECTED})
        self.card_left_by = None
        return True

    async def _feed_failed(self, job_id: str, fault) -> None:
        """The feed failed. Only when the printer shows no card inside did nothing move: then the blank
        goes back to stock and the attempt does not count."""
        host, store = self.host, self.host.store
        status = await self._status_once_back()
        if status is None or not status.connected:          # the feed may have happened; its answer was lost
            await self._in_doubt(job_id, f"feed_unknown:{fault.code}")
        elif status.card_inside:                            # jammed while feeding: that blank is spent
            await self._spoil(job_id, fault.code)
        else:
            host.job_changed(await host.db(store.release_claim, job_id, fault.code))

    async def _card_still_inside(self) -> bool:
        """After the encoding, whether the card is still in the printer. A person clearing a jam may have
        taken it out (chip written); the printer would then feed a fresh blank for the print by itself and
        eject it, chip empty, as this job's card (found by the storm, seed 20261201). A printer that cannot be
        asked (or is unplugged) is left to fail at the print."""
        status = await self._status()
        return status is None or not status.connected or status.card_inside

    async def _status(self):
        try:
            return await self.host.device(self.host.printer.status)
        except PrinterFault:
            return None

    async def _status_once_back(self):
        """The status after the link was lost mid-card, asked again every poll interval for as long as the
        printer may take to answer by itself (``Printer.answers_again_within_s``: the driver keeps the line
        quiet after a lost reply). Asked only once, one late reply made a card's fate unknown and its job
        wait for a person. None or not connected: still gone (or the daemon is stopping)."""
        status = await self._status()
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self.host.printer.answers_again_within_s
        while (status is None or not status.connected) and loop.time() < give_up_at:
            try:
                await asyncio.wait_for(self.stopping.wait(), self.host.config.printer.status_poll_s)
                return status
            except asyncio.TimeoutError:
                status = await self._status()
        return status

    async def _in_doubt(self, job_id: str, why: str) -> None:
        view = await self.host.db(self.host.store.mark_in_doubt, job_id, why)
        self.card_left_by = job_id
        log.error("job %s: where the card went is unknown (%s); it is in doubt until an operator resolves it",
                  job_id, why, extra={"job": job_id, "state": "in_doubt", "message_id": MSG_JOB_IN_DOUBT})
        self.host.job_changed(view)

    async def _spoil(self, job_id: str, reason: str, check_first: bool = False) -> None:
        """Send the card to the reject box and count its blank spoiled; if even that fails, the card's fate
        is unknown and the job waits in doubt for a person.

        With ``check_first`` (the printer went away mid-card) the printer is asked first: connected again
        with no card inside means the card already left (an eject whose answer was lost), so in doubt."""
        host, store = self.host, self.host.store
        if check_first:
            status = await self._status_once_back()
            if status is None or not status.connected or not status.card_inside:
                await self._in_doubt(job_id, f"card_unaccounted:{reason}")
                return
        try:
            await host.device(host.printer.reject)
        except PrinterFault as fault:
            host.printer_fault(fault)
            await self._in_doubt(job_id, f"reject_failed:{fault.code}")
            return
        view = await host.db(store.mark_spoiled, job_id, reason, host.config.limits.max_attempts)
        crash_point("after_spoiled")
        log.info("job %s: the card is in the reject box and its blank is spoiled (%s); the job is %s", job_id, reason,
                 view["state"], extra={"job": job_id, "state": view["state"], "message_id": MSG_CARD_REJECTED})
        host.job_changed(view)
        host.stock_changed()

