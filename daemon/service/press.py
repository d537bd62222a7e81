"""One card's way through the printer: claim, feed, encode, print, eject, each step committed before the next."""

from __future__ import annotations

import base64
import json
import logging

from kartud.hw.encoder import EncodeError
from kartud.hw.printer import PrinterFault

from ..service.crashpoints import crash_point
from ..rules.card_types import has_chip
from ..rules.jobs import job_view
from ..service.journal_ids import MSG_CARD_REJECTED, MSG_JOB_IN_DOUBT, MSG_JOB_PRINTED
from ..ledger.store import OutOfBlanks

log = logging.getLogger("kartud.press")


class Press:
    """Runs one job at a time on the printer and encoder.

    The job is claimed (``printing``, a blank reserved, committed) before the printer feeds a
    blank, and is ``printed`` only after the card left the printer. A crash in between leaves it
    ``printing``, which the next start turns into ``in_doubt``: never printed again by itself.
    """

    def __init__(self, daemon):
        self.daemon = daemon
        self.current_job: str | None = None

    async def run(self, job: dict) -> None:
        daemon, store = self.daemon, self.daemon.store
        job_id = job["job_id"]
        try:
            claimed = await daemon.db(store.claim, job_id)
        except OutOfBlanks:
            daemon.stock_changed()
            return
        self.current_job = job_id
        crash_point("after_claim")
        try:
            daemon.job_changed(job_view(claimed))
            await self._card_way(claimed)
        finally:
            self.current_job = None

    async def _card_way(self, job: dict) -> None:
        daemon, store, job_id = self.daemon, self.daemon.store, job["job_id"]
        printer, encoder = daemon.printer, daemon.encoder
        chip = has_chip(job["card_type"]) and encoder is not None
        try:
            await daemon.device(printer.insert_card, chip)
        except PrinterFault as fault:
            daemon.printer_fault(fault)
            await self._feed_failed(job_id, fault)
            return
        crash_point("after_feed")
        card_uid = None
        try:
            if chip:
                daemon.job_changed(await daemon.db(store.set_step, job_id, "encoding"))
                files = {int(fid, 16): base64.b64decode(data) for fid, data in json.loads(job["chip_files"]).items()}
                card_uid = await daemon.device(encoder.encode, files)
                crash_point("after_encode")
            daemon.job_changed(await daemon.db(store.set_step, job_id, "printing"))
            await daemon.device(printer.print_card, job["front_png"], job["back_png"])
            crash_point("after_print")
            daemon.job_changed(await daemon.db(store.set_step, job_id, "ejecting"))
            await daemon.device(printer.eject)
            crash_point("after_eject")        # the card is out, the ledger does not know yet
        except EncodeError as error:
            log.warning("job %s: the chip could not be encoded (%s); the card goes to the reject box", job_id,
                        error.kind, extra={"job": job_id})
            if error.kind in ("reader_gone", "service_gone"):
                # At once, not at the next poll: the scheduler must not feed another chip blank meanwhile.
                daemon.raise_fault("encoder_disconnected", str(error))
            await self._spoil(job_id, "encode_failed")
            return
        except PrinterFault as fault:
            log.warning("job %s: the printer failed (%s)", job_id, fault.code, extra={"job": job_id})
            daemon.printer_fault(fault)
            await self._spoil(job_id, fault.code, check_first=fault.code == "printer_disconnected")
            return
        except ValueError as error:
            # The driver could not turn the face into panels (intake decodes every image, so this is rare).
            log.error("job %s: the face cannot be printed (%s); the card goes to the reject box", job_id, error,
                      extra={"job": job_id})
            await self._spoil(job_id, "unprintable_face")
            return
        view = await daemon.db(store.mark_printed, job_id, card_uid)
        crash_point("after_printed")
        daemon.job_changed(view)
        log.info("job %s printed", job_id, extra={"job": job_id, "record": job["record_id"], "card_type": job["card_type"],
                                                  "message_id": MSG_JOB_PRINTED})

    async def _feed_failed(self, job_id: str, fault) -> None:
        """The feed failed. Only when the printer shows no card inside did nothing move: then the blank
        goes back to stock and the attempt does not count."""
        daemon, store = self.daemon, self.daemon.store
        status = await self._status()
        if status is None or not status.connected:          # the feed may have happened; its answer was lost
            await self._in_doubt(job_id, f"feed_unknown:{fault.code}")
        elif status.card_inside:                            # jammed while feeding: that blank is spent
            await self._spoil(job_id, fault.code)
        else:
            daemon.job_changed(await daemon.db(store.release_claim, job_id, fault.code))

    async def _status(self):
        try:
            return await self.daemon.device(self.daemon.printer.status)
        except PrinterFault:
            return None

    async def _in_doubt(self, job_id: str, why: str) -> None:
        view = await self.daemon.db(self.daemon.store.mark_in_doubt, job_id, why)
        log.error("job %s: where the card went is unknown (%s); it is in doubt until an operator resolves it",
                  job_id, why, extra={"job": job_id, "state": "in_doubt", "message_id": MSG_JOB_IN_DOUBT})
        self.daemon.job_changed(view)

    async def _spoil(self, job_id: str, reason: str, check_first: bool = False) -> None:
        """Send the card to the reject box and count its blank spoiled; if even that fails, the card's fate
        is unknown and the job waits in doubt for a person.

        With ``check_first`` (the printer went away mid-card) the printer is asked first: connected again
        with no card inside means the card already left (an eject whose answer was lost), so in doubt."""
        daemon, store = self.daemon, self.daemon.store
        if check_first:
            status = await self._status()
            if status is None or not status.connected or not status.card_inside:
                await self._in_doubt(job_id, f"card_unaccounted:{reason}")
                return
        try:
            await daemon.device(daemon.printer.reject)
        except PrinterFault as fault:
            daemon.printer_fault(fault)
            await self._in_doubt(job_id, f"reject_failed:{fault.code}")
            return
        view = await daemon.db(store.mark_spoiled, job_id, reason, daemon.config.limits.max_attempts)
        crash_point("after_spoiled")
        log.info("job %s: the card is in the reject box and its blank is spoiled (%s); the job is %s", job_id, reason,
                 view["state"], extra={"job": job_id, "state": view["state"], "message_id": MSG_CARD_REJECTED})
        daemon.job_changed(view)
        daemon.stock_changed()

