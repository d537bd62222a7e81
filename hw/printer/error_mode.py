"""The error mode (``Pem``) a card runs under, set at its start and the printer's own put back after it."""

from __future__ import annotations

import logging

from . import PrinterFault
from . import protocol as p

log = logging.getLogger("kartud.printer")


class ErrorModeMixin:
    """Part of :class:`~kartud.hw.printer.evolis.EvolisPrinter`: ``Pem;<card_error_mode>`` for each card
    (errors answered to kartud, not waited on at the printer: E2's ``Pem;2``), and the printer's own mode,
    learnt from ``Rem`` at connect, put back when the card has left, when a feed brought no card in, and
    when kartud lets go of the printer (docs/printer.md, "Sequences, and why")."""

    _error_mode: str | None         # the printer's own Pem (Rem), None when not known
    _refused_mode: bool             # the printer refused card_error_mode once: not asked again
    _card_mode_set: bool            # kartud's card_error_mode is in force until the card leaves

    def _learn_error_mode(self) -> None:
        """The printer's own error mode (``Rem`` answers ``current,saved``), to put back after each card.
        Not learnt again while kartud's card mode is set (a reconnection mid-card would read kartud's own)."""
        if self._card_mode_set:
            return
        reply = self._optional_read("Rem")
        current = (reply or "").split(",")[0].strip()
        self._error_mode = current if current.isdigit() else None

    def _feed_refused(self) -> None:
        """The feed answered an error: with no card inside there is no card to run under kartud's mode, so
        the printer's own goes back now (not after the next card). Best effort: the feed's fault is what
        the caller hears."""
        if not self._ready:
            return
        try:
            if self._card_position() is None:
                self._sequence_open = False
                self._restore_error_mode()
        except PrinterFault:
            pass

    def _enter_card_mode(self) -> None:
        """``Pem;<card_error_mode>`` for this card (errors answered to kartud, not waited on at the printer),
        unless the printer is in it already; a refusal is logged once and the card goes on without it:
        nothing kartud sends depends on it."""
        mode = self.settings.card_error_mode
        if mode is None or self._refused_mode or self._card_mode_set or self._error_mode == str(mode):
            return
        reply = self._talk(p.set_error_mode(mode), f"Pem;{mode}", self.settings.reply_timeout_s)
        if reply == p.OK:
            self._card_mode_set = True
            return
        self._refused_mode = True
        log.warning("the printer answered %r to Pem;%d; it keeps its own error mode (the card's sequence does not "
                    "depend on it)", reply[:40], mode)

    def _restore_error_mode(self) -> None:
        """Put back the mode the printer had before the card (the guide's default, 0, when it did not say)."""
        if not self._card_mode_set:
            return
        mode = self._error_mode or "0"
        reply = self._talk(p.set_error_mode(int(mode)), f"Pem;{mode}", self.settings.reply_timeout_s)
        self._card_mode_set = False
        if reply != p.OK:
            log.warning("the printer answered %r when its error mode Pem;%s was put back", reply[:40], mode)
