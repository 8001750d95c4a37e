"""Create and seed the sample's table. Safe to run any number of times."""

import os
import sqlite3

SEED = ["apple", "banana", "cherry"]


def main() -> None:
    """Create the items table if needed and add any missing seed rows."""
    path = os.environ.get("SAMPLE_DATABASE", "/tmp/flask-sample.sqlite3")
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)"
        )
        connection.executemany(
            "INSERT OR IGNORE INTO items (name) VALUES (?)", [(name,) for name in SEED]
        )
    print(f"migrated {path}")


if __name__ == "__main__":
    main()
