"""A MySQL server's sentence inside Portl's: one full stop, never two marks in a row."""

import pymysql

from portl.connectors.mysql import Config
from portl.connectors.mysql.client import Server


def server() -> Server:
    return Server(Config(type="mysql", url="mysql://app@db.example:3306/shop"), ".", "destination")


def test_a_server_message_ending_in_a_full_stop_is_joined_without_doubled_punctuation():
    error = server().error(pymysql.err.OperationalError(1205, "Lock wait timeout exceeded."), "writing to shop.t")
    assert str(error) == ("writing to shop.t on MySQL destination db.example:3306/shop: Lock wait timeout exceeded "
                          "(error 1205); worth retrying")


def test_a_missing_table_message_ends_with_one_full_stop_before_the_advice():
    error = server().error(pymysql.err.ProgrammingError(1146, "Table 'shop.t' doesn't exist."), "reading shop.t")
    assert str(error) == ("reading shop.t: Table 'shop.t' doesn't exist on MySQL destination db.example:3306/shop. "
                          "Check the table name (and its database)")
