"""CHECK constraints, defaults and view queries of one database written for another: names
quoted the destination's way, functions renamed, anything unknown refused with the reason."""

from __future__ import annotations

import pyarrow as pa
import pytest

from portl.connectors.base import TableDef
from portl.connectors.sql.expressions import Names, Untranslatable, check_of, default_of, translate, view_names
from portl.connectors.sqlite import checks_of


def pg(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def my(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def table(dialect: str, **defaults: str) -> TableDef:
    schema = pa.schema([("Qty", pa.int64()), ("Label", pa.string()), ("Active", pa.bool_())])
    return TableDef("Stock", schema, defaults=defaults, dialect=dialect)


def test_column_names_are_quoted_as_the_copy_names_them_whatever_case_the_expression_uses():
    names = Names(pg, columns={"qty": "Qty", "label": "Label"})
    assert translate("qty > 0 AND [Label] <> ''", "sqlite", "postgres", names) == "\"Qty\" > 0 AND \"Label\" <> ''"
    assert translate('"Qty" BETWEEN 1 AND 10', "sqlite", "mysql", Names(my, columns={"qty": "Qty"})) == \
        "`Qty` BETWEEN 1 AND 10"


def test_functions_take_the_destinations_spelling():
    names = Names(my, columns={"label": "Label"})
    assert translate("length(label) <= 20", "sqlite", "mysql", names) == "char_length(`Label`) <= 20"
    assert translate("length(`Label`) < 5", "mysql", "postgres", Names(pg, columns={"label": "Label"})) == \
        'octet_length("Label") < 5'


def test_an_unknown_function_or_operator_is_refused_with_its_name():
    names = Names(pg, columns={"label": "Label"})
    with pytest.raises(Untranslatable, match=r"it calls strftime\(\), which Portl does not translate from sqlite to postgres"):
        translate("strftime('%Y', label) > '2000'", "sqlite", "postgres", names)
    with pytest.raises(Untranslatable, match="it refers to GLOB"):
        translate("label GLOB '[A-Z]*'", "sqlite", "postgres", names)
    with pytest.raises(Untranslatable, match="OR in MySQL"):
        translate("label || 'x' <> ''", "sqlite", "mysql", Names(my, columns={"label": "Label"}))


def test_postgres_casts_are_kept_for_postgres_and_left_out_for_mysql():
    assert translate("(label)::text <> ''::text", "postgres", "postgres", Names(pg, columns={"label": "Label"})) == \
        "(\"Label\")::text <> ''::text"
    assert translate("(label)::text <> ''::text", "postgres", "mysql", Names(my, columns={"label": "Label"})) == \
        "(`Label`) <> ''"


def test_defaults_must_fit_the_column_type():
    assert default_of(table("sqlite", Qty="0"), "Qty", "bigint", "postgres", pg) == "0"
    assert default_of(table("sqlite", Qty="'5'"), "Qty", "bigint", "postgres", pg) == "5"
    assert default_of(table("sqlite", Active="1"), "Active", "bool", "postgres", pg) == "TRUE"
    assert default_of(table("sqlite", Label="(datetime('now'))"), "Label", "text", "postgres", pg) == "CURRENT_TIMESTAMP"
    assert default_of(table("postgres", Label="'n/a'::character varying"), "Label", "text", "mysql", my) == "'n/a'"
    with pytest.raises(Untranslatable, match="'' is not a number, and the column is bigint"):
        default_of(table("sqlite", Qty="''"), "Qty", "bigint", "postgres", pg)


def test_a_postgres_check_definition_loses_its_keyword_and_keeps_its_expression():
    stock = table("postgres")
    assert check_of(stock, "CHECK ((qty > 0)) NOT VALID", "mysql", my) == "((`Qty` > 0))"


def test_sqlite_checks_are_read_from_the_create_statement_with_their_names():
    created = ("CREATE TABLE t (id INTEGER PRIMARY KEY, qty INTEGER CHECK (qty > 0), "
               "label TEXT, CONSTRAINT [ck_label] CHECK (length(label) < 5 AND (qty>1)))")
    assert [(c.name, c.expression) for c in checks_of(created)] == [
        ("", "qty > 0"), ("ck_label", "length(label) < 5 AND (qty>1)")]


def test_view_queries_name_the_copied_tables_and_drop_the_source_schema():
    tables = [TableDef("Orders", pa.schema([("Id", pa.int64()), ("Total", pa.float64())]))]
    names = view_names(tables, pg, lambda name: f'"copy".{pg(name)}', "shop")
    query = "select `shop`.`Orders`.`Id` AS `id`, o.total AS big from `shop`.`Orders` o where o.total > 100"
    assert translate(query, "mysql", "postgres", names) == (
        'SELECT "copy"."Orders"."Id" AS "Id", "o"."Total" AS "big" FROM "copy"."Orders" "o" WHERE "o"."Total" > 100')


def test_between_two_postgres_databases_an_expression_keeps_its_operators_and_words():
    names = Names(pg, columns={"code": "code"})
    assert translate("(code ~ '^[A-Z]+$'::text) AND code IS DISTINCT FROM 'x'", "postgres", "postgres", names) == \
        "(\"code\" ~ '^[A-Z]+$'::text) AND \"code\" IS DISTINCT FROM 'x'"
    with pytest.raises(Untranslatable, match="it uses '~'"):
        translate("code ~ 'x'", "postgres", "mysql", Names(my, columns={"code": "code"}))


def test_a_cast_to_a_type_of_the_source_is_not_copied_even_into_postgres():
    stock = TableDef("Stock", pa.schema([("Mood", pa.string())]), defaults={"Mood": "'happy'::mood"}, dialect="postgres")
    with pytest.raises(Untranslatable, match="it casts to mood, a type Portl does not create"):
        default_of(stock, "Mood", "text", "postgres", pg)
