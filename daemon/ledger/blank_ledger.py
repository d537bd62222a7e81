"""The blanks half of the store: batches received, stock per card type, and every movement of a blank."""

from __future__ import annotations

from ..rules import jobs as J
from ..rules.errors import CommandError, invalid_payload


class OutOfBlanks(Exception):
    """No blank of the card type is in stock."""


class BlankLedger:
    """Blank-stock methods of :class:`~kartud.ledger.store.Store`. The blank_stock table's CHECK keeps
    received + adjusted = in_stock + reserved + printed + spoiled at every commit."""

    def _movement(self, conn, card_type, kind, count, batch_id=None, job_id=None, reason=None) -> None:
        # Starts (and their take-backs) carry the machine's monotonic time: see station_facts.
        boot_id, mono = (self.clock.boot_id, self.clock.monotonic()) if kind in ("reserved", "released") \
            else (None, None)
        conn.execute("INSERT INTO blank_movements (at, card_type, kind, count, batch_id, job_id, reason, boot_id, mono)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (self.now(), card_type, kind, count, batch_id, job_id, reason, boot_id, mono))

    def receive_blanks(self, batch_id: str, card_type: str, count: int, note: str | None) -> int:
        """Add a batch of blanks; the same batch twice with the same content counts once. Returns in_stock."""
        with self.transaction() as conn:
            existing = conn.execute("SELECT * FROM blank_batches WHERE batch_id = ?", (batch_id,)).fetchone()
            if existing is not None:
                if (existing["card_type"], existing["count"]) != (card_type, count):
                    raise CommandError("batch_conflict",
                                       f"batch {batch_id} was already received as {existing['count']} "
                                       f"{existing['card_type']} blanks; use a new batch_id for a different batch")
            else:
                conn.execute("INSERT INTO blank_batches (batch_id, card_type, count, remaining, note, received_at)"
                             " VALUES (?, ?, ?, ?, ?, ?)", (batch_id, card_type, count, count, note, self.now()))
                conn.execute("UPDATE blank_stock SET received = received + ?, in_stock = in_stock + ?"
                             " WHERE card_type = ?", (count, count, card_type))
                self._movement(conn, card_type, "received", count, batch_id)
                self._audit(conn, "blanks_received", None, {"batch_id": batch_id, "card_type": card_type,
                                                            "count": count})
            return self._in_stock(conn, card_type)

    def adjust_blanks(self, card_type: str, delta: int, reason: str, adjustment_id: str | None = None,
                      id_field: str = "adjustment_id") -> int:
        """A stocktake correction (found or lost blanks), with its reason. Returns in_stock.

        With an ``adjustment_id`` the same adjustment twice counts once, for ever; the id used again for
        another adjustment is refused naming ``id_field``, the field the client sent it in (an office
        that sends only ``request_id`` has it kept as the adjustment's id). Stock never goes below zero:
        a larger negative ``delta`` is refused and changes nothing. Blanks taken away come off the
        oldest batches first, as blanks are used.
        """
        with self.transaction() as conn:
            if adjustment_id is not None:
                done = conn.execute("SELECT * FROM blank_adjustments WHERE adjustment_id = ?",
                                    (adjustment_id,)).fetchone()
                if done is not None:
                    if (done["card_type"], done["delta"], done["reason"]) != (card_type, delta, reason):
                        raise invalid_payload([{"field": id_field, "problem": "was already used for a different "
                                                f"adjustment; use a new {id_field}"}])
                    return self._in_stock(conn, card_type)
            in_stock = self._in_stock(conn, card_type)
            if in_stock + delta < 0:
                raise invalid_payload([{"field": "delta", "problem": f"would take {card_type} stock below zero: only "
                                                                     f"{in_stock} in stock"}])
            conn.execute("UPDATE blank_stock SET adjusted = adjusted + ?, in_stock = in_stock + ? WHERE card_type = ?",
                         (delta, delta, card_type))
            to_remove = -delta
            for batch in conn.execute("SELECT batch_id, remaining FROM blank_batches WHERE card_type = ? AND "
                                      "remaining > 0 ORDER BY received_at, rowid", (card_type,)).fetchall():
                if to_remove <= 0:
                    break
                taken = min(to_remove, batch["remaining"])
                conn.execute("UPDATE blank_batches SET remaining = remaining - ? WHERE batch_id = ?",
                             (taken, batch["batch_id"]))
                to_remove -= taken
            if adjustment_id is not None:
                conn.execute("INSERT INTO blank_adjustments (adjustment_id, card_type, delta, reason, at)"
                             " VALUES (?, ?, ?, ?, ?)", (adjustment_id, card_type, delta, reason, self.now()))
            self._movement(conn, card_type, "adjusted", delta, reason=reason)
            self._audit(conn, "blanks_adjusted", None, {"card_type": card_type, "delta": delta, "reason": reason,
                                                        "adjustment_id": adjustment_id})
            return self._in_stock(conn, card_type)

    @staticmethod
    def _in_stock(conn, card_type: str) -> int:
        return conn.execute("SELECT in_stock FROM blank_stock WHERE card_type = ?", (card_type,)).fetchone()[0]

    def record_cleaning(self, note: str | None) -> bool:
        """The printer was cleaned: the count of cards towards the next cleaning starts again.
        A second report with no card fed since changes nothing (returns False)."""
        with self.transaction() as conn:
            last = conn.execute("SELECT COALESCE(MAX(id), 0) FROM blank_movements").fetchone()[0]
            previous = conn.execute("SELECT MAX(after_movement) FROM cleanings").fetchone()[0]
            if previous is not None and not conn.execute(
                    "SELECT 1 FROM blank_movements WHERE kind = 'reserved' AND id > ? LIMIT 1", (previous,)).fetchone():
                return False
            conn.execute("INSERT INTO cleanings (at, note, after_movement) VALUES (?, ?, ?)", (self.now(), note, last))
            self._audit(conn, "printer_cleaned", None, {"note": note})
            return True

    def cards_since_cleaning(self) -> int:
        """Blanks fed to the printer since the last recorded cleaning (or ever)."""
        last = self.conn.execute("SELECT COALESCE(MAX(after_movement), 0) FROM cleanings").fetchone()[0]
        # A claim taken back (nothing was fed) moved no card through the printer.
        return self.conn.execute("SELECT COALESCE(SUM(CASE kind WHEN 'reserved' THEN 1 ELSE -1 END), 0)"
                                 " FROM blank_movements WHERE kind IN ('reserved', 'released') AND id > ?",
                                 (last,)).fetchone()[0]

    def stock(self) -> dict[str, dict[str, int]]:
        """Per card type: received, adjusted, in_stock, reserved, printed, spoiled."""
        return {r["card_type"]: {k: r[k] for k in r.keys() if k != "card_type"}
                for r in self.conn.execute("SELECT * FROM blank_stock ORDER BY card_type")}

    def wrong_blank(self, job_id: str, blank_type: str) -> dict:
        """The printer fed a blank of ``blank_type`` for a job of another type, and it went to the reject box
        unprinted. The job's claim is taken back (its blank back in stock, the attempt not counted, reason
        ``wrong_blank``); the blank that moved is spoiled as what it is: one of ``blank_type`` from stock, or,
        with none of that type in stock, a blank found (adjusted +1) and spoiled. Returns the job view."""
        with self.transaction() as conn:
            job = self._job_row(conn, job_id)
            self._take_back(conn, job, "wrong_blank")
            if self._in_stock(conn, blank_type) <= 0:
                conn.execute("UPDATE blank_stock SET adjusted = adjusted + 1, in_stock = in_stock + 1"
                             " WHERE card_type = ?", (blank_type,))
                self._movement(conn, blank_type, "adjusted", 1, None, job_id, "wrong_blank_found_in_feeder")
            conn.execute("UPDATE blank_stock SET in_stock = in_stock - 1, spoiled = spoiled + 1 WHERE card_type = ?",
                         (blank_type,))
            self._movement(conn, blank_type, "spoiled", 1, None, job_id, "wrong_blank")
            self._audit(conn, "wrong_blank", job_id, {"job_type": job["card_type"], "blank_type": blank_type})
            return J.job_view(dict(self._change_state(conn, job_id, J.QUEUED, "job_released",
                                                      {"reason": "wrong_blank"}, reason="wrong_blank",
                                                      attempts=job["attempts"] - 1, batch_id=None)))

    def note_card_rejected(self, job_id: str, why: str) -> None:
        """A card found inside the printer after its job went in doubt was sent to the reject box: the job's
        in-doubt episode records it (its blank stays reserved until an operator resolves the job)."""
        with self.transaction() as conn:
            self._audit(conn, "card_rejected", job_id, {"why": why})

    def _take_back(self, conn, job, reason: str) -> None:
        """The job's reserved blank back in stock (and in its batch): no card of it went through the printer."""
        card_type = job["card_type"]
        conn.execute("UPDATE blank_stock SET reserved = reserved - 1, in_stock = in_stock + 1 WHERE card_type = ?",
                     (card_type,))
        if job["batch_id"]:
            conn.execute("UPDATE blank_batches SET remaining = remaining + 1 WHERE batch_id = ?", (job["batch_id"],))
        self._movement(conn, card_type, "released", 1, job["batch_id"], job["job_id"], reason)

    def _use_reserved(self, conn, job, kind: str, reason: str | None) -> None:
        card_type = job["card_type"]
        conn.execute(f"UPDATE blank_stock SET reserved = reserved - 1, {kind} = {kind} + 1 WHERE card_type = ?",
                     (card_type,))
        self._movement(conn, card_type, kind, 1, job["batch_id"], job["job_id"], reason)
