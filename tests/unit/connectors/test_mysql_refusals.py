"""Which MySQL/MariaDB errors and LOAD DATA warnings refuse rows for their data, and which row."""

from portl.connectors.mysql.refusals import name_primary_key, refusal


def test_a_value_that_does_not_fit_names_its_row_of_the_batch_and_its_column():
    refused = refusal(1406, "Data too long for column 'name' at row 3", "writing to t", first_row=5000)
    assert (refused.row, refused.column) == (5002, "name")
    assert refused.reason == "Data too long for column 'name' (error 1406)"
    assert str(refused) == "writing to t: Data too long for column 'name' (error 1406)"


def test_a_warning_code_read_as_text_is_understood():
    refused = refusal("1263", "Column set to default value; NULL supplied to NOT NULL column 'nn' at row 2", "w")
    assert (refused.row, refused.column) == (1, "nn")


def test_a_qualified_column_is_named_by_its_own_name():
    refused = refusal(1292, "Incorrect date value: '2024-02-30' for column `db`.`t`.`d` at row 1", "w")
    assert (refused.row, refused.column) == (0, "d")


def test_constraint_errors_name_no_row_and_a_foreign_key_names_its_column():
    duplicate = refusal(1062, "Duplicate entry '1' for key 'PRIMARY'", "w")
    assert (duplicate.row, duplicate.column) == (None, None)  # no primary key given
    missing = refusal(1452, "Cannot add or update a child row: a foreign key constraint fails (`db`.`t`, CONSTRAINT "
                            "`t_ibfk_1` FOREIGN KEY (`pid`) REFERENCES `parent` (`id`))", "w")
    assert (missing.row, missing.column) == (None, "pid")


def test_errors_that_are_not_about_the_rows_are_not_refusals():
    assert refusal(1213, "Deadlock found when trying to get lock", "w") is None
    assert refusal(1146, "Table 'db.t' doesn't exist", "w") is None
    assert refusal(None, "lost connection", "w") is None


def test_a_duplicate_of_a_one_column_primary_key_names_that_column_and_the_value():
    refused = name_primary_key(refusal(1062, "Duplicate entry '7' for key 'PRIMARY'", "w"), ("id",))
    assert (refused.column, refused.value) == ("id", "7")
    mysql8 = name_primary_key(refusal(1062, "Duplicate entry '7' for key 't.PRIMARY'", "w"), ("id",))
    assert (mysql8.column, mysql8.value) == ("id", "7")
    other = name_primary_key(refusal(1062, "Duplicate entry 'a@b' for key 'email'", "w"), ("id",))
    assert (other.column, other.value) == (None, "a@b")
    composite = name_primary_key(refusal(1062, "Duplicate entry '1-2' for key 'PRIMARY'", "w"), ("a", "b"))
    assert composite.column is None
