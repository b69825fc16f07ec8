"""The statements of the db steps: quoted names, bound values, and :name parameters."""

from __future__ import annotations

import pytest

from portl.errors import ConfigError
from portl.steps.sql import dialect_for, insert, named_query, parameter_names, update, upsert

PG = dialect_for("postgres")
MY = dialect_for("mysql")


def test_postgres_upsert_is_one_statement_returning_was_inserted():
    [statement] = upsert(PG, "resources", ["code", "source", "name"], ["code", "source"], ["id"])

    assert statement.text == (
        'INSERT INTO "resources" ("code", "source", "name") VALUES (%s, %s, %s) ON CONFLICT ("code", "source") '
        'DO UPDATE SET "name" = EXCLUDED."name" RETURNING "id", (xmax = 0) AS "was_inserted"'
    )
    assert statement.params == ("code", "source", "name")
    assert statement.shown.startswith('INSERT INTO "resources" ("code", "source", "name") VALUES (:code, :source, :name)')


def test_an_upsert_of_key_columns_only_still_returns_the_row():
    [statement] = upsert(PG, "tags", ["tag"], ["tag"], ["id"])

    assert 'DO UPDATE SET "tag" = EXCLUDED."tag" RETURNING "id"' in statement.text


def test_mysql_upsert_binds_the_new_values_again_and_reads_back_by_key():
    write, read = upsert(MY, "resources", ["code", "source", "name"], ["code", "source"], ["id"])

    assert write.text == ("INSERT INTO `resources` (`code`, `source`, `name`) VALUES (%s, %s, %s) "
                          "ON DUPLICATE KEY UPDATE `name` = %s")
    assert write.params == ("code", "source", "name", "name")
    assert read.text == "SELECT `id` FROM `resources` WHERE `code` <=> %s AND `source` <=> %s"
    assert read.params == ("code", "source")


def test_identifiers_are_quoted_by_the_drivers_rules_and_schemas_split():
    [statement] = insert(PG, 'sales."odd.name"', ['we"ird', "pct%"], [])

    assert statement.text == 'INSERT INTO "sales"."odd.name" ("we""ird", "pct%%") VALUES (%s, %s)'
    assert statement.shown == 'INSERT INTO "sales"."odd.name" ("we""ird", "pct%") VALUES (:we"ird, :pct%)'
    [mysql] = insert(MY, "db.t`x", ["a`b"], [])
    assert mysql.text == "INSERT INTO `db`.`t``x` (`a``b`) VALUES (%s)"


def test_mysql_insert_returning_reads_the_row_back_through_last_insert_id():
    write, read = insert(MY, "versions", ["resource_id"], ["id", "version_number"], auto_increment="id")

    assert write.text == "INSERT INTO `versions` (`resource_id`) VALUES (%s)"
    assert read.text == "SELECT `id`, `version_number` FROM `versions` WHERE `id` = LAST_INSERT_ID()"


def test_update_names_set_and_where_parameters_apart():
    [statement] = update(PG, "versions", ["md5", "status"], ["id", "status"], ["id"])

    assert statement.text == 'UPDATE "versions" SET "md5" = %s, "status" = %s WHERE "id" = %s AND "status" = %s RETURNING "id"'
    assert statement.params == ("set.md5", "set.status", "where.id", "where.status")
    assert statement.shown.endswith('WHERE "id" = :id AND "status" = :where_status RETURNING "id"')


def test_mysql_update_returning_reads_back_with_the_new_values():
    _, read = update(MY, "versions", ["status"], ["id", "status"], ["id"])

    assert read.params == ("where.id", "set.status")


def test_named_parameters_become_placeholders_in_order_of_use():
    statement = named_query("SELECT * FROM t WHERE a = :a AND b = :b OR a = :a", PG)

    assert statement.text == "SELECT * FROM t WHERE a = %s AND b = %s OR a = %s"
    assert statement.params == ("a", "b", "a")
    assert statement.shown == "SELECT * FROM t WHERE a = :a AND b = :b OR a = :a"


@pytest.mark.parametrize("sql", [
    "SELECT x::int FROM t",
    "SELECT ':a' FROM t",
    'SELECT ":a" FROM t',
    "SELECT 1 -- :a",
    "SELECT /* :a */ 1",
    "SELECT $$ :a $$",
    "SELECT $tag$ :a $tag$",
    "SELECT @v := 1",
])
def test_colons_in_casts_strings_names_comments_and_dollar_quotes_are_not_parameters(sql):
    assert named_query(sql, PG).params == ()


def test_mysql_backquoted_names_and_backslash_escapes_are_skipped():
    assert named_query("SELECT `a:b`, 'it\\'s :x' FROM t WHERE c = :c", MY).params == ("c",)


def test_a_literal_percent_is_doubled_for_the_driver():
    assert named_query("SELECT * FROM t WHERE name LIKE 'a%' AND x = :x", PG).text == "SELECT * FROM t WHERE name LIKE 'a%%' AND x = %s"


def test_parameter_names_lists_each_name_once():
    assert parameter_names("SELECT :a, :b, :a") == ["a", "b"]


def test_only_postgres_and_mysql_have_db_steps():
    with pytest.raises(ConfigError, match="db steps run on postgres and mysql connections, not sqlite"):
        dialect_for("sqlite")
