"""The station's ledger in SQLite, the only place with SQL: store, jobs, blanks, schema, station facts, report queries."""
