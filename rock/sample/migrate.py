"""Create and seed the sample's table, in the related database or SQLite. Safe to rerun."""

from app import migrate


def main() -> None:
    """Create the items table if needed and add any missing seed rows."""
    print(f"migrated {migrate()}")


if __name__ == "__main__":
    main()
