"""The type fidelity matrix: one table holding every logical type and its edge values, seeded
into each system, moved by the engine to each other system, and compared value by value.

- :mod:`.table` is the fixture table: columns, logical types and rows.
- :mod:`.systems` seeds a source, names it in a job file, and reads a destination back.
- :mod:`.expected` says what each value must look like after a given pair, following the type
  maps of docs/connectors.md.
"""
