"""The DDL that ends a whole-database copy into MySQL, worked out from what the destination has."""

import pyarrow as pa

from portl.connectors.base import ForeignKeyDef, IndexDef, TableDef
from portl.connectors.mysql.catalog import ColumnState, TableKeys
from portl.connectors.mysql.constraints import constraint_notes, constraint_statements

DB = "shop"
PARENT = TableDef("parent", pa.schema([pa.field("id", pa.int32(), False), pa.field("code", pa.string(), False),
                                       pa.field("label", pa.string())]),
                  ("id",), (IndexDef("parent_code", ("code",), True), IndexDef("parent_label", ("label",))), identity="id")
FK_A = ForeignKeyDef("fk_parent", ("parent_id",), "parent", ("id",), "CASCADE")
FK_B = ForeignKeyDef("fk_parent", ("parent_id",), "parent", ("id",))
A = TableDef("a", pa.schema([pa.field("id", pa.int32(), False), pa.field("parent_id", pa.int32())]), ("id",),
             foreign_keys=(FK_A,))
B = TableDef("b", pa.schema([pa.field("id", pa.int32(), False), pa.field("parent_id", pa.int32())]), ("id",),
             foreign_keys=(FK_B,))
COPY = [PARENT, A, B]

ALTER_PARENT = ("ALTER TABLE `shop`.`parent` ADD PRIMARY KEY (`id`), MODIFY `id` INT NOT NULL AUTO_INCREMENT, "
                "MODIFY `code` VARCHAR(255) NOT NULL")
INDEXES = ["CREATE UNIQUE INDEX `parent_code` ON `shop`.`parent` (`code`)",
           "CREATE INDEX `parent_label` ON `shop`.`parent` (`label`(255))"]
FK_STATEMENTS = [
    "ALTER TABLE `shop`.`a` ADD CONSTRAINT `fk_parent` FOREIGN KEY (`parent_id`) REFERENCES `shop`.`parent` (`id`) "
    "ON DELETE CASCADE ON UPDATE NO ACTION",
    "ALTER TABLE `shop`.`b` ADD CONSTRAINT `b_fk_parent` FOREIGN KEY (`parent_id`) REFERENCES `shop`.`parent` (`id`) "
    "ON DELETE NO ACTION ON UPDATE NO ACTION",
]


def loaded(*columns: str) -> dict[str, ColumnState]:
    """Columns as the copy creates them: nullable, ints and LONGTEXT."""
    return {c: ColumnState(True, "longtext" if c in ("code", "label") else "int", False) for c in columns}


def keyed(*columns: str, auto: str = "") -> dict[str, ColumnState]:
    """Columns after the table's ALTER: NOT NULL, key text as varchar."""
    return {c: ColumnState(c == "label", "varchar" if c in ("code", "label") else "int", c == auto) for c in columns}


FRESH = {"parent": TableKeys(loaded("id", "code", "label")), "a": TableKeys(loaded("id", "parent_id")),
         "b": TableKeys(loaded("id", "parent_id"))}


def test_tables_just_loaded_get_every_key_index_and_foreign_key():
    expected = [ALTER_PARENT, "ALTER TABLE `shop`.`a` ADD PRIMARY KEY (`id`), MODIFY `id` INT NOT NULL",
                "ALTER TABLE `shop`.`b` ADD PRIMARY KEY (`id`), MODIFY `id` INT NOT NULL"] + INDEXES + FK_STATEMENTS
    assert constraint_statements(DB, COPY, FRESH) == expected
    assert constraint_statements(DB, COPY) == expected  # no table there yet: the same


def test_a_step_stopped_after_the_first_table_adds_the_rest_and_not_the_first_tables_key():
    present = dict(FRESH, parent=TableKeys(keyed("id", "code", "label", auto="id"), ("id",)))
    assert constraint_statements(DB, COPY, present) == [
        "ALTER TABLE `shop`.`a` ADD PRIMARY KEY (`id`), MODIFY `id` INT NOT NULL",
        "ALTER TABLE `shop`.`b` ADD PRIMARY KEY (`id`), MODIFY `id` INT NOT NULL"] + INDEXES + FK_STATEMENTS


def test_a_foreign_key_there_is_kept_and_the_others_keep_the_names_the_first_run_gave_them():
    present = {"parent": TableKeys(keyed("id", "code", "label", auto="id"), ("id",), frozenset({"parent_code", "parent_label"})),
               "a": TableKeys(keyed("id", "parent_id"), ("id",), foreign_keys=(FK_A,)),
               "b": TableKeys(keyed("id", "parent_id"), ("id",))}
    assert constraint_statements(DB, COPY, present) == FK_STATEMENTS[1:]
    assert constraint_notes(DB, COPY, present) == [
        "foreign key fk_parent of table b is created as b_fk_parent: table a has a foreign key fk_parent too, and MySQL "
        "names foreign keys per database"]


def test_a_foreign_key_there_under_its_new_name_is_not_added_again_under_another():
    renamed = ForeignKeyDef("b_fk_parent", ("parent_id",), "parent", ("id",), "NO ACTION", "NO ACTION")
    present = dict(FRESH, b=TableKeys(loaded("id", "parent_id"), foreign_keys=(renamed,)))
    statements = constraint_statements(DB, COPY, present)
    assert [s for s in statements if "FOREIGN KEY" in s] == FK_STATEMENTS[:1]


def test_a_foreign_key_name_another_table_of_the_database_has_is_not_taken():
    other = ForeignKeyDef("fk_parent", ("owner_id",), "owners", ("id",))
    present = dict(FRESH, pets=TableKeys(loaded("id"), foreign_keys=(other,)))
    statements = [s for s in constraint_statements(DB, COPY, present) if "FOREIGN KEY" in s]
    assert [s.split("`")[5] for s in statements] == ["a_fk_parent", "b_fk_parent"]
    assert constraint_notes(DB, COPY, present) == [
        "foreign key fk_parent of table a is created as a_fk_parent: the database has a foreign key fk_parent already, "
        "and MySQL names foreign keys per database",
        "foreign key fk_parent of table b is created as b_fk_parent: the database has a foreign key fk_parent already, "
        "and MySQL names foreign keys per database"]


def test_a_table_with_its_key_but_a_column_still_nullable_gets_only_that_column():
    columns = keyed("id", "code", "label", auto="id") | {"code": ColumnState(True, "varchar", False)}
    present = dict(FRESH, parent=TableKeys(columns, ("id",), frozenset({"parent_code", "parent_label"})))
    assert constraint_statements(DB, [PARENT], present) == [
        "ALTER TABLE `shop`.`parent` MODIFY `code` VARCHAR(255) NOT NULL"]


def test_a_primary_key_of_its_own_is_kept_and_the_plan_says_so():
    present = dict(FRESH, a=TableKeys(keyed("id", "parent_id"), ("parent_id", "id")))
    assert not [s for s in constraint_statements(DB, COPY, present) if "`a` ADD PRIMARY KEY" in s]
    assert "table a has a primary key (parent_id, id) already, not the source's (id); it is kept" in \
        constraint_notes(DB, COPY, present)


def test_auto_increment_led_by_a_secondary_index_is_added_once():
    events = TableDef("events", pa.schema([pa.field("seq", pa.int64(), False), pa.field("at", pa.string())]),
                      (), (IndexDef("events_seq", ("seq",), True),), identity="seq")
    late = "ALTER TABLE `shop`.`events` MODIFY `seq` BIGINT NOT NULL AUTO_INCREMENT"
    assert late in constraint_statements(DB, [events])
    done = {"events": TableKeys({"seq": ColumnState(False, "bigint", True), "at": ColumnState(True, "longtext", False)},
                                indexes=frozenset({"events_seq"}))}
    assert constraint_statements(DB, [events], done) == []
