"""Index and constraint names for a whole-database copy into one Postgres schema."""

import pyarrow as pa

from portl.connectors.base import ForeignKeyDef, IndexDef, TableDef
from portl.connectors.postgres.index_names import Constraint, Relation, choose_names, shortened

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("ref", pa.int64())])


def table(name: str, indexes=(), fks=(), key=("id",)) -> TableDef:
    return TableDef(name, SCHEMA, tuple(key), tuple(indexes), tuple(fks))


def tables(*defs: TableDef) -> dict[str, TableDef]:
    return {t.name: t for t in defs}


def by_name(chosen: dict) -> dict:
    """``{(table, index or foreign key): name}`` as ``{(table, its source name): name}``."""
    return {(table, made.name): name for (table, made), name in chosen.items()}


def test_unique_names_are_kept_and_nothing_is_reported():
    names = choose_names("public", tables(table("a", [IndexDef("a_name", ("name",))]), table("b", [IndexDef("b_name", ("name",))])),
                         ["a", "b"], [], {})
    assert by_name(names.indexes) == {("a", "a_name"): "a_name", ("b", "b_name"): "b_name"}
    assert names.primary_keys == {"a": "a_pkey", "b": "b_pkey"}
    assert names.notes == []


def test_an_index_name_shared_by_two_tables_becomes_table_underscore_index_on_both():
    names = choose_names("public", tables(table("orders", [IndexDef("idx_name", ("name",))]),
                                          table("customers", [IndexDef("idx_name", ("name",))])), [], [], {})
    assert by_name(names.indexes) == {("orders", "idx_name"): "orders_idx_name", ("customers", "idx_name"): "customers_idx_name"}
    assert sorted(names.notes) == [
        "index idx_name of table customers is created as customers_idx_name: Postgres names indexes per schema, "
        "and idx_name is also the name of an index of table orders",
        "index idx_name of table orders is created as orders_idx_name: Postgres names indexes per schema, "
        "and idx_name is also the name of an index of table customers",
    ]


def test_the_names_do_not_depend_on_the_order_of_the_tables():
    a, b = table("a", [IndexDef("ix", ("name",))]), table("b", [IndexDef("ix", ("name",))])
    one = choose_names("public", {"a": a, "b": b}, [], [], {})
    other = choose_names("public", {"b": b, "a": a}, [], [], {})
    assert one.indexes == other.indexes and one.notes == other.notes


def test_a_name_longer_than_63_bytes_is_cut_and_ended_with_a_hash():
    long_table, long_index = "t" * 40, "i" * 40
    names = choose_names("public", tables(table(long_table, [IndexDef(long_index, ("name",))]),
                                          table("other", [IndexDef(long_index, ("name",))])), [], [], {})
    chosen = by_name(names.indexes)[(long_table, long_index)]
    assert len(chosen.encode()) == 63 and chosen.startswith("t" * 27 + "_" + "i" * 26 + "_")
    assert chosen == shortened(long_table, long_index)
    assert by_name(names.indexes)[("other", long_index)] == f"other_{long_index}"


def test_cutting_a_long_name_keeps_whole_characters():
    name = shortened("ø" * 40)
    assert len(name.encode()) <= 63 and name.startswith("ø" * 27 + "_")


def test_two_long_names_alike_in_their_first_63_bytes_stay_apart():
    first, second = "x" * 63 + "_a", "x" * 63 + "_b"
    names = choose_names("public", tables(table("t", [IndexDef(first, ("name",)), IndexDef(second, ("ref",))])), [], [], {})
    assert by_name(names.indexes)[("t", first)] != by_name(names.indexes)[("t", second)]
    assert all(len(n.encode()) <= 63 for n in names.indexes.values())
    assert any("longer than the 63 bytes" in n for n in names.notes)


def test_an_index_named_like_a_copied_table_is_renamed():
    names = choose_names("public", tables(table("orders", [IndexDef("customers", ("ref",))]), table("customers")), [], [], {})
    assert by_name(names.indexes)[("orders", "customers")] == "orders_customers"
    assert "customers is the name of a table" in names.notes[0]


def test_an_index_named_like_a_primary_key_leaves_the_key_its_usual_name():
    names = choose_names("public", tables(table("a", [IndexDef("b_pkey", ("name",))]), table("b")), ["a", "b"], [], {})
    assert names.primary_keys["b"] == "b_pkey" and by_name(names.indexes)[("a", "b_pkey")] == "a_b_pkey"
    assert names.notes == ["index b_pkey of table a is created as a_b_pkey: Postgres names indexes per schema, and "
                           "b_pkey is also the name of the primary key of table b"]


def test_a_name_taken_by_something_else_in_the_schema_is_not_reused():
    taken = [Relation("idx_name", "index", "unrelated", ("x",)), Relation("orders_id_seq", "sequence")]
    names = choose_names("shop", tables(table("orders", [IndexDef("idx_name", ("name",)), IndexDef("orders_id_seq", ("id",))])),
                         [], taken, {})
    assert by_name(names.indexes) == {("orders", "idx_name"): "orders_idx_name",
                                      ("orders", "orders_id_seq"): "orders_orders_id_seq"}
    assert "schema shop already has an index idx_name on table unrelated" in names.notes[0]
    assert "schema shop already has a sequence orders_id_seq" in names.notes[1]


def test_an_index_left_by_an_earlier_run_of_the_copy_keeps_its_name():
    earlier = [Relation("orders_idx_name", "index", "orders", ("name",)), Relation("idx_name", "index", "unrelated", ("x",))]
    first = choose_names("shop", tables(table("orders", [IndexDef("idx_name", ("name",))])), [], [], {})
    again = choose_names("shop", tables(table("orders", [IndexDef("idx_name", ("name",))])), [], earlier, {})
    assert by_name(again.indexes)[("orders", "idx_name")] == "orders_idx_name"
    assert by_name(first.indexes)[("orders", "idx_name")] == "idx_name"


def test_an_existing_index_of_the_same_name_with_other_columns_is_not_taken_for_the_copy():
    there = [Relation("ix", "index", "orders", ("ref",))]
    names = choose_names("public", tables(table("orders", [IndexDef("ix", ("name",))])), [], there, {})
    assert by_name(names.indexes)[("orders", "ix")] == "orders_ix"


def test_foreign_key_names_repeat_across_tables_as_postgres_allows():
    fk = ForeignKeyDef("fk_parent", ("ref",), "parent", ("id",))
    names = choose_names("public", tables(table("a", fks=[fk]), table("b", fks=[fk]), table("parent")), [], [], {})
    assert by_name(names.foreign_keys) == {("a", "fk_parent"): "fk_parent", ("b", "fk_parent"): "fk_parent"}
    assert names.notes == []


def test_a_foreign_key_named_like_its_tables_primary_key_is_renamed():
    fk = ForeignKeyDef("a_pkey", ("ref",), "parent", ("id",))
    names = choose_names("public", tables(table("a", fks=[fk]), table("parent")), ["a", "parent"], [], {})
    assert by_name(names.foreign_keys)[("a", "a_pkey")] not in ("a_pkey", "")
    assert names.notes[0].startswith("foreign key a_pkey of table a is created as ")
    assert names.notes[0].endswith("table a already has a primary key a_pkey")


def test_two_foreign_keys_with_one_name_on_a_table_get_two_names():
    one, two = ForeignKeyDef("t_ref_fkey", ("ref",), "x", ("id",)), ForeignKeyDef("t_ref_fkey", ("ref",), "y", ("id",))
    names = choose_names("public", tables(table("t", fks=[one, two])), [], [], {})
    assert names.foreign_keys[("t", one)] == "t_ref_fkey" and names.foreign_keys[("t", two)] == shortened("t_ref_fkey", "2")
    assert names.notes == [f"foreign key t_ref_fkey of table t is created as {shortened('t_ref_fkey', '2')}: table t has 2 "
                           "foreign keys named t_ref_fkey"]


def test_a_foreign_key_already_on_the_table_is_marked_existing():
    fk = ForeignKeyDef("fk_parent", ("ref",), "parent", ("id",))
    names = choose_names("public", tables(table("a", fks=[fk])), [], [], {"a": [Constraint("fk_parent", "f", ("ref",))]})
    assert names.existing_foreign_keys == {("a", fk)} and names.foreign_keys[("a", fk)] == "fk_parent"
