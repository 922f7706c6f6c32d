"""Database: the tables (``models``), the engine and sessions (``engine``), and Alembic migrations."""
