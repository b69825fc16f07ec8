"""The identifier policy of whole-database copies, applied to the tables' descriptions."""

from __future__ import annotations

import pyarrow as pa
import pytest

from portl.connectors.base import CheckDef, ForeignKeyDef, IndexDef, TableDef
from portl.engine.copy_names import apply_policy, mapping_of
from portl.errors import ConfigError

READING = TableDef(
    "Reading", pa.schema([("ReadingId", pa.int64()), ("SensorId", pa.int64()), ("Label", pa.string())]),
    primary_key=("ReadingId",), indexes=(IndexDef("IX_Reading_SensorId", ("SensorId",)),),
    foreign_keys=(ForeignKeyDef("FK_Reading_Sensor", ("SensorId",), "Sensor", ("SensorId",), deferrable="DEFERRABLE"),),
    identity="ReadingId", lengths={"Label": 160}, defaults={"Label": "'n/a'"}, checks=(CheckDef("CK_Label", "Label <> ''"),),
    dialect="sqlite")


def test_keep_leaves_every_name_as_the_source_wrote_it():
    assert apply_policy([READING], fold=False) == [READING]


def test_lower_folds_table_column_key_index_and_foreign_key_names():
    (folded,) = apply_policy([READING], fold=True)
    assert folded.name == "reading" and folded.schema.names == ["readingid", "sensorid", "label"]
    assert folded.primary_key == ("readingid",) and folded.identity == "readingid"
    assert folded.indexes == (IndexDef("ix_reading_sensorid", ("sensorid",)),)
    assert folded.foreign_keys == (ForeignKeyDef("fk_reading_sensor", ("sensorid",), "sensor", ("sensorid",)),)
    assert folded.foreign_keys[0].deferrable == "DEFERRABLE"
    assert folded.lengths == {"label": 160} and folded.defaults == {"label": "'n/a'"}
    assert folded.checks == (CheckDef("ck_label", "Label <> ''"),)  # expressions find columns case-blind


def test_names_that_fold_to_one_are_refused_with_both_named():
    twins = TableDef("reading", pa.schema([("Id", pa.int64()), ("ID", pa.int64())]))
    with pytest.raises(ConfigError, match="would give tables Reading and reading; columns of table reading Id and ID "
                                          "one name; set copy.identifiers: keep"):
        apply_policy([READING, twins], fold=True)


def test_each_destination_column_reads_its_source_column_whatever_its_case():
    (folded,) = apply_policy([READING], fold=True)
    mapping = mapping_of(READING, folded)
    assert not mapping.auto
    assert {name: spec.from_ for name, spec in mapping.columns.items()} == {
        "readingid": "ReadingId", "sensorid": "SensorId", "label": "Label"}
