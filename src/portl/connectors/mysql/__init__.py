"""MySQL and MariaDB (``type: mysql``, ``type: mariadb``): read a table, a query or a whole
database; write append / replace / upsert with LOAD DATA LOCAL INFILE or multi-row INSERTs.

The package: ``config`` (the job's keys), ``client`` (connections, the writers' pool, error
translation), ``columns`` (MySQL types and their text as Arrow), ``catalog`` (information_schema),
``dialect`` (quoting, type map, DDL), ``source`` (reads), ``csvrows`` (a table's rows as CSV lines
the server writes, for the verbatim path), ``loading`` (an Arrow batch to a LOAD DATA file or
INSERTs), ``sink`` (writes), ``constraints`` (keys and indexes after a database copy). PyMySQL is
imported only inside functions.
"""

from __future__ import annotations

from portl.connectors.mysql.config import Config

__all__ = ["Config", "open_source", "open_sink"]


def _driver() -> None:
    try:
        import pymysql  # noqa: F401
    except ImportError as exc:
        from portl.errors import TerminalError

        raise TerminalError("the MySQL connector needs PyMySQL: pip install 'portl[mysql]'") from exc


def open_source(config: Config, base_dir: str):
    """A table or query source, or a catalog of tables when ``tables`` is given."""
    _driver()
    from portl.connectors.mysql.source import MysqlCatalog, MysqlSource

    return MysqlCatalog(config, base_dir) if config.tables else MysqlSource(config, base_dir)


def open_sink(config: Config, base_dir: str):
    """A destination table, or a whole database (for copies) when no ``table`` is given."""
    _driver()
    from portl.connectors.mysql.sink import MysqlSink

    return MysqlSink(config, base_dir)


def sink_capabilities():
    """What a MySQL or MariaDB destination can do, as ``portl connectors`` lists it (a sink says
    which of the two bulk methods the server allowed)."""
    _driver()
    from portl.connectors.base import Capabilities, ConflictStrategy, WriteMode
    from portl.connectors.mysql.sink import WRITERS

    return Capabilities(modes=frozenset(WriteMode), upsert_strategies=frozenset(ConflictStrategy), transactional=True,
                        resumable=True, concurrent_writers=WRITERS, alters_tables=True, whole_databases=True, keeps_runs=True,
                        bulk_method=f"LOAD DATA LOCAL INFILE of each batch where the server allows it, else multi-row "
                                    f"INSERT with bound values; up to {WRITERS} batches at once")
