"""The encoder's way to the card through PC/SC: pyscard over the system's pcscd, every wait time-boxed."""

from __future__ import annotations

import logging
import threading
import time

from smartcard import scard

from .encoder import GET_UID, CardChannel, EncodeError, EncoderStatus

log = logging.getLogger("kartud.encoder")

OK = scard.SCARD_S_SUCCESS
# pcscd went away (or restarted: the old context is dead for good and must be established again).
SERVICE_LOST = {scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED, scard.SCARD_F_COMM_ERROR}
READER_LOST = {scard.SCARD_E_UNKNOWN_READER, scard.SCARD_E_READER_UNAVAILABLE, scard.SCARD_E_NO_READERS_AVAILABLE}
CARD_LOST = {scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD, scard.SCARD_W_RESET_CARD}
CARD_UNUSABLE = {scard.SCARD_W_UNRESPONSIVE_CARD, scard.SCARD_W_UNPOWERED_CARD, scard.SCARD_E_PROTO_MISMATCH,
                 scard.SCARD_W_UNSUPPORTED_CARD, scard.SCARD_E_CARD_UNSUPPORTED}
READER_ABSENT_STATES = scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE | scard.SCARD_STATE_IGNORE
# After a command got no answer, how long pcscd may take to show that the card left (it notices a
# removal at its next poll of the reader, 0.4 s apart with vpcd; see docs/encoder.md).
REMOVAL_GRACE_S = 1.0
NO_ANSWER = "the card at the reader does not answer"
# A card on the reader that did not answer is tried again this often (no state change tells when to).
RETRY_S = 0.1


def _message(hr: int) -> str:
    return f"{scard.SCardGetErrorMessage(hr).rstrip('.')} (0x{hr & 0xFFFFFFFF:08X})"


class PcscChannel(CardChannel):
    """A PC/SC reader, through pyscard and pcscd: the chip encoder of a real printer.

    ``reader`` is a substring of the reader's name (case does not matter); empty takes the first
    reader pcscd lists. The reader is looked up again for every card and every status, so a reader
    unplugged and plugged back (under a new slot number) is found again, and the PC/SC context is
    established again whenever pcscd has gone away and come back.

    Nothing here sleeps: waiting for the card waits on pcscd's reader-state changes
    (``SCardGetStatusChange``) for at most the time given.

    >>> channel = PcscChannel("Virtual PCD")          # doctest: +SKIP
    >>> Encoder(channel, timeout_s=10).encode({0x0101: b"..."})   # doctest: +SKIP
    '04A1B2C3D4E5F6'
    """

    def __init__(self, reader: str = ""):
        self.wanted = reader
        self._lock = threading.RLock()     # the daemon calls from one thread; tests may not
        self._context: int | None = None
        self._reader = ""
        self._card: int | None = None
        self._protocol = 0
        # pcscd counts a reader's insertions and removals in the top 16 bits of its state: the count at
        # which the last card was connected tells that card from the next (None: no card yet, or the
        # count started again with a new pcscd).
        self._last_insertion: int | None = None

    # -- CardChannel ------------------------------------------------------------------------------

    def wait_for_card(self, timeout_s: float) -> None:
        """Connect to a card put on the reader since the last one, waiting up to ``timeout_s`` for it."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            self.release()
            reader = self._find_reader()
            known = scard.SCARD_STATE_UNAWARE          # the first call answers at once with the state now
            no_card = why = f"no card came to the reader within {timeout_s:g} s"
            retry_at: float | None = None              # when to try again a card that did not answer
            while True:
                until = deadline if retry_at is None else min(deadline, retry_at)
                hr, states = scard.SCardGetStatusChange(self._context, _ms_until(until), [(reader, known)])
                if hr == scard.SCARD_E_TIMEOUT:
                    if time.monotonic() >= deadline:
                        raise EncodeError("wrong_card" if why == NO_ANSWER else "no_card", why)
                    known, retry_at = scard.SCARD_STATE_UNAWARE, None
                    continue
                self._check(hr, "wait for the card")
                event = states[0][1]
                known = event & ~scard.SCARD_STATE_CHANGED
                if event & READER_ABSENT_STATES:
                    raise EncodeError("reader_gone", f"the reader {reader!r} went away")
                if event & scard.SCARD_STATE_PRESENT:
                    not_yet = self._take_card(reader, event)
                    if not_yet is None:
                        return
                    why = not_yet
                    # A card that does not answer shows no state change to wait for: try it again shortly.
                    retry_at = time.monotonic() + RETRY_S if not_yet == NO_ANSWER else None
                else:
                    why, retry_at = no_card, None
                if time.monotonic() >= deadline:
                    raise EncodeError("wrong_card" if why == NO_ANSWER else "no_card", why)

    def _take_card(self, reader: str, event: int) -> str | None:
        """Connect to the card the reader shows and make sure it answers: None when done, else why not yet."""
        if event >> 16 == self._last_insertion:
            # The card we had last, not yet seen leaving (pcscd polls the reader): never write the next
            # card's files onto it. Its removal is a state change, so the caller waits on.
            return "the card at the reader is the one encoded before, and no other came"
        refused = self._connect(reader)
        if refused == scard.SCARD_E_SHARING_VIOLATION:
            return "the card is held by another program"
        if refused is not None:
            return "the card left the reader as soon as it came"
        # pcscd may still show a card that was swapped for another faster than it polls the reader (with
        # vpcd: the swap is invisible when a command reached the old card first); that handle fails its
        # first command. So ask for the UID, which any contactless reader answers, before writing anything.
        hr, response = scard.SCardTransmit(self._card, self._protocol, list(GET_UID))
        if hr == OK and len(response) >= 2:
            self._last_insertion = event >> 16
            return None
        self.release()
        self._check(hr if hr in SERVICE_LOST | READER_LOST else OK, "ask the card for its UID")
        return NO_ANSWER

    def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU to the connected card and return its response (data + SW1 SW2)."""
        with self._lock:
            if self._card is None:
                raise EncodeError("no_card", "no card connected")
            hr, response = scard.SCardTransmit(self._card, self._protocol, list(apdu))
            if hr == OK and len(response) >= 2:
                return bytes(response)
            # vpcd answers a card that left mid-command with success and no bytes; a real reader with
            # an error: either way, ask the reader what happened before saying what went wrong.
            raise self._why_no_answer(hr)

    def release(self) -> None:
        """Disconnect from the card, leaving it powered as it is (the printer moves it on next)."""
        with self._lock:
            if self._card is not None:
                scard.SCardDisconnect(self._card, scard.SCARD_LEAVE_CARD)     # a gone card or service: nothing to do
                self._card = None

    def status(self) -> EncoderStatus:
        """Connected when pcscd answers and lists the reader; establishes the context again if pcscd came back."""
        with self._lock:
            try:
                reader = self._find_reader()
            except EncodeError:
                return EncoderStatus(connected=False, reader="")
            return EncoderStatus(connected=True, reader=reader)

    def close(self) -> None:
        """Let go of the card and the PC/SC context."""
        with self._lock:
            self.release()
            self._drop_context()

    # -- the reader -------------------------------------------------------------------------------

    def _find_reader(self) -> str:
        """The reader to use, from a fresh list (re-establishing a context that pcscd forgot)."""
        for attempt in range(2):
            if self._context is None:
                hr, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
                if hr != OK:
                    raise EncodeError("service_gone", f"pcscd does not answer: {_message(hr)}")
                self._context = context
            hr, readers = scard.SCardListReaders(self._context, [])
            if hr in SERVICE_LOST and attempt == 0:
                self._drop_context()                    # pcscd restarted under us: a new context may work
                continue
            if hr in (scard.SCARD_E_NO_READERS_AVAILABLE, OK):
                break
            self._check(hr, "list the readers")
        matching = [name for name in (readers if hr == OK else []) if self.wanted.lower() in name.lower()]
        if not matching:
            wanted = f" whose name contains {self.wanted!r}" if self.wanted else ""
            raise EncodeError("reader_gone", f"pcscd lists no reader{wanted}")
        if matching[0] != self._reader:
            log.info("chip encoder on reader %r", matching[0])
            self._reader, self._last_insertion = matching[0], None
        return matching[0]

    def _connect(self, reader: str) -> int | None:
        """Connect to the card the reader shows: None when connected, else the code of a refusal worth
        waiting out (the card gone again before pcscd showed it, or another program holding it)."""
        # Exclusive: nothing else may talk to the chip while it is being written.
        hr, card, protocol = scard.SCardConnect(self._context, reader, scard.SCARD_SHARE_EXCLUSIVE,
                                                scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
        if hr == OK:
            self._card, self._protocol = card, protocol
            return None
        if hr in CARD_LOST or hr == scard.SCARD_E_SHARING_VIOLATION:
            return hr
        if hr in CARD_UNUSABLE:
            raise EncodeError("wrong_card", f"the card at the reader cannot be used: {_message(hr)}")
        self._check(hr, "connect to the card")
        return hr

    def _why_no_answer(self, hr: int) -> EncodeError:
        """The card gave no answer: tell a card gone, a reader gone and pcscd gone from a card that is mute."""
        if hr in SERVICE_LOST:
            self._drop_context()
            return EncodeError("service_gone", f"pcscd went away: {_message(hr)}")
        if hr in READER_LOST:
            return EncodeError("reader_gone", f"the reader went away: {_message(hr)}")
        deadline = time.monotonic() + REMOVAL_GRACE_S
        known = scard.SCARD_STATE_UNAWARE
        while True:
            code, states = scard.SCardGetStatusChange(self._context, _ms_until(deadline), [(self._reader, known)])
            if code == scard.SCARD_E_TIMEOUT:
                what = "no answer" if hr == OK else _message(hr)
                return EncodeError("wrong_card", f"the card gave no valid answer ({what})")
            try:
                self._check(code, "look at the reader")
            except EncodeError as error:
                return error
            event = states[0][1]
            if event & READER_ABSENT_STATES:
                return EncodeError("reader_gone", f"the reader {self._reader!r} went away mid-command")
            if not event & scard.SCARD_STATE_PRESENT:
                return EncodeError("no_card", "the card left the reader mid-command")
            known = event & ~scard.SCARD_STATE_CHANGED

    def _check(self, hr: int, what: str) -> None:
        if hr == OK:
            return
        if hr in SERVICE_LOST:
            self._drop_context()
            raise EncodeError("service_gone", f"pcscd went away while trying to {what}: {_message(hr)}")
        if hr in READER_LOST:
            raise EncodeError("reader_gone", f"the reader went away while trying to {what}: {_message(hr)}")
        if hr in CARD_LOST:
            raise EncodeError("no_card", f"the card went away while trying to {what}: {_message(hr)}")
        self._drop_context()               # an error we do not know: start afresh with the next card
        raise EncodeError("reader_gone", f"could not {what}: {_message(hr)}")

    def _drop_context(self) -> None:
        self._card = None                  # its handle died with the context
        self._last_insertion = None        # a new pcscd counts from zero
        if self._context is not None:
            scard.SCardReleaseContext(self._context)   # frees the client side even when pcscd is gone
            self._context = None


def _ms_until(deadline: float) -> int:
    return max(0, int((deadline - time.monotonic()) * 1000))
