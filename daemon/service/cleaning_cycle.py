"""The printer's own cleaning cycle, run for ``maintenance/cleaned`` with ``run_cycle``, and what the printer says after."""

from __future__ import annotations

import logging
from typing import Any, Callable, Protocol, runtime_checkable

from kartud.hw.printer import PrinterFault

log = logging.getLogger("kartud.cleaning")


@runtime_checkable
class CleaningHost(Protocol):
    """What the cleaning cycle needs from the service (the :class:`~kartud.service.daemon.Daemon` is one)."""

    printer: Any
    press: Any                      # its ``current_job``: a card on its way, when not None

    async def device(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking printer call on the device thread."""


async def run_cleaning_cycle(host) -> dict[str, Any]:
    """Run the printer's cleaning cycle (``Scp``, a cleaning card in the feeder) unless a card is on its way,
    and read back whether the printer still asks for cleaning.

    The answer: ``ran`` (the cycle ran), ``printer_says`` (``done``, ``still_due`` or ``unknown``: a printer
    without a cleaning read), ``cards_until_cleaning`` (the printer's count after it, when it keeps one) and,
    when it did not run or failed, ``why`` in plain words. Only ``done`` or ``unknown`` let the caller record
    the cleaning: the ledger's count starts again only when the printer agrees.
    """
    printer = getattr(host, "printer", None)
    if printer is None:
        return {"ran": False, "printer_says": "unknown", "why": "this station has no printer to clean"}
    if host.press.current_job is not None:
        return {"ran": False, "printer_says": "unknown",
                "why": f"a card is on its way through the printer (job {host.press.current_job}); pause the "
                       f"queue, wait for it to finish, then try again"}
    try:
        done = await host.device(printer.clean)
    except PrinterFault as fault:
        log.warning("the printer's cleaning cycle failed (%s)", fault.code)
        return {"ran": False, "printer_says": "unknown", "fault": fault.code,
                "why": f"the printer refused the cleaning cycle ({fault.code}): {fault}"}
    status = await host.device(printer.status)
    says = {True: "done", False: "still_due", None: "unknown"}[done]
    log.info("the printer's cleaning cycle ran; the printer says cleaning is %s",
             {"done": "done", "still_due": "still needed", "unknown": "not something it reports"}[says])
    result: dict[str, Any] = {"ran": True, "printer_says": says,
                              "cards_until_cleaning": status.cards_until_cleaning}
    if says == "still_due":
        result["why"] = ("the printer still asks for cleaning: check the cleaning card is in the feeder and run "
                         "the cycle again")
    return result
