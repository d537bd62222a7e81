"""The station's ledger in SQLite, the only place with SQL: store, jobs, blanks, personal data, erasure, schema, reports."""
