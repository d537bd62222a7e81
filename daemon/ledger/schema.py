"""The database schema as numbered migrations; PRAGMA user_version records how far a file has come."""

from __future__ import annotations

import sqlite3
from typing import Callable

# Each entry upgrades the schema by one version. Never edit a released entry: append a new one.
MIGRATIONS: list[str] = [
    # 1: jobs, the printed-records ledger, blanks, the audit chain, station settings.
    """
    CREATE TABLE jobs (
        seq            INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id         TEXT NOT NULL UNIQUE,
        record_id      TEXT NOT NULL,
        card_type      TEXT NOT NULL CHECK (card_type IN ('KTP_EL', 'KIA')),
        nik            TEXT,                    -- erased after store.pii_retention_days
        nik_masked     TEXT NOT NULL,
        front_png      BLOB,                    -- erased after retention
        back_png       BLOB,
        chip_files     TEXT,                    -- JSON {file id: base64}, erased after retention
        pii_erased_at  TEXT,
        priority       INTEGER NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 9),
        not_after      TEXT,
        reprint        TEXT,
        content_sha256 TEXT NOT NULL,
        state          TEXT NOT NULL CHECK (state IN
                           ('queued', 'printing', 'printed', 'failed', 'cancelled', 'expired', 'in_doubt')),
        step           TEXT CHECK (step IS NULL OR step IN ('feeding', 'encoding', 'printing', 'ejecting')),
        reason         TEXT,
        attempts       INTEGER NOT NULL DEFAULT 0,
        created_at     TEXT NOT NULL,
        updated_at     TEXT NOT NULL,
        printed_at     TEXT,
        card_uid       TEXT,
        batch_id       TEXT
    );
    -- One record, at most one live or printed job: enforced by the database, not only by code.
    CREATE UNIQUE INDEX jobs_record_held ON jobs (record_id)
        WHERE state IN ('queued', 'printing', 'printed', 'in_doubt');
    CREATE INDEX jobs_queue ON jobs (state, priority DESC, seq);

    -- The ledger: one row per record that became a card. Never updated, never deleted.
    CREATE TABLE printed_records (
        record_id  TEXT PRIMARY KEY,
        job_id     TEXT NOT NULL UNIQUE REFERENCES jobs (job_id),
        card_type  TEXT NOT NULL,
        printed_at TEXT NOT NULL,
        card_uid   TEXT,
        batch_id   TEXT
    );
    CREATE TRIGGER printed_records_no_update BEFORE UPDATE ON printed_records
        BEGIN SELECT RAISE(ABORT, 'the printed-records ledger is append-only'); END;
    CREATE TRIGGER printed_records_no_delete BEFORE DELETE ON printed_records
        BEGIN SELECT RAISE(ABORT, 'the printed-records ledger is append-only'); END;

    CREATE TABLE blank_batches (
        batch_id    TEXT PRIMARY KEY,
        card_type   TEXT NOT NULL CHECK (card_type IN ('KTP_EL', 'KIA')),
        count       INTEGER NOT NULL CHECK (count > 0),
        remaining   INTEGER NOT NULL CHECK (remaining >= 0),
        note        TEXT,
        received_at TEXT NOT NULL
    );
    -- Per card type, the blank equation holds at every instant or the transaction fails.
    CREATE TABLE blank_stock (
        card_type TEXT PRIMARY KEY CHECK (card_type IN ('KTP_EL', 'KIA')),
        received  INTEGER NOT NULL DEFAULT 0 CHECK (received >= 0),
        adjusted  INTEGER NOT NULL DEFAULT 0,
        in_stock  INTEGER NOT NULL DEFAULT 0 CHECK (in_stock >= 0),
        reserved  INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
        printed   INTEGER NOT NULL DEFAULT 0 CHECK (printed >= 0),
        spoiled   INTEGER NOT NULL DEFAULT 0 CHECK (spoiled >= 0),
        CHECK (received + adjusted = in_stock + reserved + printed + spoiled)
    );
    INSERT INTO blank_stock (card_type) VALUES ('KTP_EL'), ('KIA');
    CREATE TABLE blank_movements (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        at        TEXT NOT NULL,
        card_type TEXT NOT NULL,
        kind      TEXT NOT NULL CHECK (kind IN ('received', 'adjusted', 'reserved', 'released', 'printed', 'spoiled')),
        count     INTEGER NOT NULL,
        batch_id  TEXT,
        job_id    TEXT,
        reason    TEXT
    );
    CREATE INDEX blank_movements_at ON blank_movements (at);

    -- Every state change appends one row; each row's hash covers the previous one's.
    CREATE TABLE audit (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        at        TEXT NOT NULL,
        kind      TEXT NOT NULL,
        job_id    TEXT,
        detail    TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash      TEXT NOT NULL
    );
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2: one card per NIK (a keyed hash that outlives the erased NIK), in-doubt resolutions,
    #    idempotent stock adjustments, cleanings, and blank movements made append-only.
    """
    ALTER TABLE jobs ADD COLUMN nik_hmac TEXT;
    ALTER TABLE jobs ADD COLUMN resolution TEXT CHECK (resolution IS NULL OR resolution IN ('printed', 'spoiled'));
    CREATE INDEX jobs_nik ON jobs (nik_hmac, card_type, state);
    CREATE TABLE blank_adjustments (
        adjustment_id TEXT PRIMARY KEY,
        card_type     TEXT NOT NULL,
        delta         INTEGER NOT NULL,
        reason        TEXT NOT NULL,
        at            TEXT NOT NULL
    );
    CREATE TABLE cleanings (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        at             TEXT NOT NULL,
        note           TEXT,
        after_movement INTEGER NOT NULL          -- the last blank movement before the cleaning
    );
    CREATE TRIGGER blank_movements_no_update BEFORE UPDATE ON blank_movements
        BEGIN SELECT RAISE(ABORT, 'blank movements are append-only'); END;
    CREATE TRIGGER blank_movements_no_delete BEFORE DELETE ON blank_movements
        BEGIN SELECT RAISE(ABORT, 'blank movements are append-only'); END;
    """,
    # 3: find the next job to expire, and the in-doubt jobs, without reading the whole queue.
    """
    CREATE INDEX jobs_queued_not_after ON jobs (not_after) WHERE state = 'queued' AND not_after IS NOT NULL;
    """,
    # 4: each card start also records the machine's monotonic clock and boot, so a wall clock that
    #    jumps forward cannot open a "new day" within one boot; the latest audit time finds a clock
    #    that went back.
    """
    ALTER TABLE blank_movements ADD COLUMN boot_id TEXT;
    ALTER TABLE blank_movements ADD COLUMN mono REAL;
    CREATE INDEX blank_movements_boot ON blank_movements (boot_id, mono) WHERE kind = 'reserved';
    CREATE INDEX audit_at ON audit (at);
    """,
    # 5: job counts per state, card type and priority, kept by triggers in the same transaction as
    #    the change: the scheduler, the state document and queue positions read them in constant time
    #    instead of counting a queue that may hold 100,000 jobs (the profile in docs/performance.md).
    """
    CREATE TABLE job_counts (
        state     TEXT NOT NULL,
        card_type TEXT NOT NULL,
        priority  INTEGER NOT NULL,
        n         INTEGER NOT NULL CHECK (n >= 0),
        PRIMARY KEY (state, card_type, priority)
    ) WITHOUT ROWID;
    INSERT INTO job_counts (state, card_type, priority, n)
        SELECT state, card_type, priority, COUNT(*) FROM jobs GROUP BY state, card_type, priority;
    CREATE TRIGGER job_counts_insert AFTER INSERT ON jobs BEGIN
        INSERT INTO job_counts (state, card_type, priority, n) VALUES (NEW.state, NEW.card_type, NEW.priority, 1)
            ON CONFLICT (state, card_type, priority) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER job_counts_update AFTER UPDATE OF state ON jobs WHEN OLD.state IS NOT NEW.state BEGIN
        UPDATE job_counts SET n = n - 1
            WHERE state = OLD.state AND card_type = OLD.card_type AND priority = OLD.priority;
        INSERT INTO job_counts (state, card_type, priority, n) VALUES (NEW.state, NEW.card_type, NEW.priority, 1)
            ON CONFLICT (state, card_type, priority) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER job_counts_delete AFTER DELETE ON jobs BEGIN
        UPDATE job_counts SET n = n - 1
            WHERE state = OLD.state AND card_type = OLD.card_type AND priority = OLD.priority;
    END;
    """,
    # 6: claims taken back (nothing fed) carry the monotonic clock too, so they leave today's count.
    """
    CREATE INDEX blank_movements_boot_released ON blank_movements (boot_id, mono) WHERE kind = 'released';
    """,
    # 7: requests, not only jobs, are safe to receive twice and cannot stop the box:
    #    - requests_done: each changing request acted on, by request_id, with the answer it got, so a
    #      repeat gets that answer again and changes nothing (kept security.replay_window_days);
    #    - requests_handling: a durable mark written before a request is handled and removed once it
    #      is answered; a mark left behind names a message that killed the process while handled;
    #    - quarantine: messages set aside for a person (a defect met while handling them, or one that
    #      died with the process twice), never handled again on redelivery.
    """
    CREATE TABLE requests_done (
        request_id  TEXT PRIMARY KEY,
        command     TEXT NOT NULL,
        fingerprint TEXT NOT NULL,           -- of what it asked: the same id asking something else is refused
        answer      TEXT,                    -- the response body first given, as JSON; NULL until written
        at          TEXT NOT NULL            -- UTC; pruned past security.replay_window_days
    );
    CREATE INDEX requests_done_at ON requests_done (at);
    CREATE TABLE requests_handling (
        message_sha256 TEXT PRIMARY KEY,     -- of topic and payload: a redelivery has the same
        command        TEXT NOT NULL,
        size           INTEGER NOT NULL,
        deaths         INTEGER NOT NULL DEFAULT 0,
        in_hand        INTEGER NOT NULL DEFAULT 1 CHECK (in_hand IN (0, 1)),  -- 0: died with it, not back yet
        since          TEXT NOT NULL
    );
    CREATE TABLE quarantine (
        seq            INTEGER PRIMARY KEY AUTOINCREMENT,
        message_sha256 TEXT NOT NULL,
        command        TEXT NOT NULL,
        size           INTEGER NOT NULL,
        why            TEXT NOT NULL,        -- the defect's class, or that it died with the process twice
        payload        BLOB,                 -- as received; may hold personal data: erased with retention
        at             TEXT NOT NULL
    );
    CREATE INDEX quarantine_message ON quarantine (message_sha256);
    """,
    # 8: personal data leaves this file, which the operators' group may read, for the personal-data file
    #    that only kartud reads (kartud.ledger.personal; moved there just before this step, see
    #    Store.open); an erased job keeps 4 digits of its NIK; the eraser finds what is due by an index.
    """
    ALTER TABLE jobs DROP COLUMN nik;
    ALTER TABLE jobs DROP COLUMN front_png;
    ALTER TABLE jobs DROP COLUMN back_png;
    ALTER TABLE jobs DROP COLUMN chip_files;
    UPDATE jobs SET nik_masked = substr(nik_masked, 1, 4) || substr('****************', 1, length(nik_masked) - 4)
        WHERE pii_erased_at IS NOT NULL;
    CREATE INDEX jobs_pii_due ON jobs (updated_at)
        WHERE pii_erased_at IS NULL AND state IN ('printed', 'failed', 'cancelled', 'expired');
    ALTER TABLE quarantine ADD COLUMN payload_kept INTEGER NOT NULL DEFAULT 0 CHECK (payload_kept IN (0, 1));
    UPDATE quarantine SET payload_kept = payload IS NOT NULL;
    ALTER TABLE quarantine DROP COLUMN payload;
    CREATE INDEX quarantine_payload_due ON quarantine (at) WHERE payload_kept = 1;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, prepare: dict[int, Callable[[sqlite3.Connection], None]] | None = None
            ) -> tuple[int, int]:
    """Bring the database up to :data:`SCHEMA_VERSION`, each step in its own transaction.

    ``prepare[n]``, when given, runs inside step ``n``'s transaction before its statements (step 8 moves
    the personal data out first). Returns ``(from_version, to_version)``. A file from a newer kartud is
    refused rather than guessed at.
    """
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise RuntimeError(f"the database has schema version {current}, newer than this kartud knows "
                           f"({SCHEMA_VERSION}); install the newer kartud again")
    for version in range(current, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if prepare and version + 1 in prepare:
                prepare[version + 1](conn)
            for statement in _statements(MIGRATIONS[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return current, SCHEMA_VERSION


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit on its own)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return [s for s in statements if s]
