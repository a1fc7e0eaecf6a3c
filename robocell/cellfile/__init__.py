"""The cell file: the static description of a cell (YAML, validated), separate from the running world's state.

Lives here: the schema and loader (``spec``: ``CellSpec``, ``load_cell_spec``), its arm, object and fixture types
(``arm``, ``types``), the problems a file can have (``errors``), describing a cell (``description``), fixture
placement (``placement``), the randomization block (``randomization``) and YAML reading with line numbers
(``yamlio``).

May import: ``robocell.errors``, ``robocell.motion`` (arm models). Not ``robocell.core``: contracts take a
``CellSpec``, never the other way round.
"""
