"""The store: ClickHouse connection and engine rules, migrations, read-only SQL, queries and reads."""
