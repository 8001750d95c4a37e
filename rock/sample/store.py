"""Where the sample keeps its items: the related database, else a local SQLite file.

The flask-k8s charm passes a related database as `<DB>_DB_CONNECT_STRING` (and its parts);
PostgreSQL wins over MySQL when both are related.
"""

import os
import sqlite3

SEED = ["apple", "banana", "cherry"]


def backend() -> str:
    """Which database the environment points at: postgresql, mysql or sqlite."""
    if os.environ.get("POSTGRESQL_DB_CONNECT_STRING"):
        return "postgresql"
    if os.environ.get("MYSQL_DB_HOSTNAME"):
        return "mysql"
    return "sqlite"


def sqlite_path() -> str:
    """Where the SQLite fallback lives."""
    return os.environ.get("SAMPLE_DATABASE", "/tmp/flask-sample.sqlite3")


def connect(read_only: bool = False):
    """A DB-API connection to the current backend."""
    kind = backend()
    if kind == "postgresql":
        import psycopg2

        return psycopg2.connect(os.environ["POSTGRESQL_DB_CONNECT_STRING"], connect_timeout=5)
    if kind == "mysql":
        import pymysql

        return pymysql.connect(
            host=os.environ["MYSQL_DB_HOSTNAME"],
            port=int(os.environ.get("MYSQL_DB_PORT", "3306")),
            user=os.environ.get("MYSQL_DB_USERNAME"),
            password=os.environ.get("MYSQL_DB_PASSWORD", ""),
            database=os.environ.get("MYSQL_DB_NAME"),
            connect_timeout=5,
        )
    if read_only:
        return sqlite3.connect(f"file:{sqlite_path()}?mode=ro", uri=True)
    return sqlite3.connect(sqlite_path())


def errors() -> tuple[type[Exception], ...]:
    """The exceptions the current backend's driver raises."""
    kind = backend()
    if kind == "postgresql":
        import psycopg2

        return (psycopg2.Error,)
    if kind == "mysql":
        import pymysql

        return (pymysql.Error,)
    return (sqlite3.Error,)


def placeholder() -> str:
    """The driver's parameter marker."""
    return "?" if backend() == "sqlite" else "%s"


SCHEMA = {
    "postgresql": [
        "CREATE TABLE IF NOT EXISTS items (id SERIAL PRIMARY KEY, name TEXT UNIQUE NOT NULL)",
        "INSERT INTO items (name) VALUES (%s) ON CONFLICT (name) DO NOTHING",
    ],
    "mysql": [
        "CREATE TABLE IF NOT EXISTS items "
        "(id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(200) UNIQUE NOT NULL)",
        "INSERT IGNORE INTO items (name) VALUES (%s)",
    ],
    "sqlite": [
        "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)",
        "INSERT OR IGNORE INTO items (name) VALUES (?)",
    ],
}


def migrate() -> str:
    """Create the items table if needed and add any missing seed rows; say where."""
    kind = backend()
    create, insert = SCHEMA[kind]
    connection = connect()
    try:
        cursor = connection.cursor()
        cursor.execute(create)
        cursor.executemany(insert, [(name,) for name in SEED])
        connection.commit()
    finally:
        connection.close()
    return kind if kind != "sqlite" else sqlite_path()
