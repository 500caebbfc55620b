"""Table definitions (SQLAlchemy Core): the one source Alembic compares migrations against."""

from sqlalchemy import BigInteger, Column, Integer, MetaData, Table

# Named constraints make migrations reproducible: Alembic can drop what it can name.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# The page counter: a single row (id 1), created by the first migration.
counter = Table(
    "counter",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("count", BigInteger, nullable=False, server_default="0"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)
