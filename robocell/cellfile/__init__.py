"""The cell file: the static description of a cell (YAML, validated), separate from the running world's state.

Lives here: the schema and loader (``spec``: ``CellSpec``, ``load_cell_spec``), its arm, object and fixture types
(``arm``, ``types``), the problems a file can have (``errors``), describing a cell (``description``), fixture
placement (``placement``), the randomization block (``randomization``) and YAML reading with line numbers
(``yamlio``).

May import: ``robocell.errors``, ``robocell.motion`` (arm models). Not ``robocell.core``: contracts take a
``CellSpec``, never the other way round.
"""


def __getattr__(name: str) -> object:
    # ``robocell.cellfile`` was one module before the rooms: its names (``load_cell_spec``, ``CellSpec``, ...) still
    # resolve here, from ``spec``, loaded on first use so that importing one part of the room (``types``,
    # ``errors``) does not load the whole loader.
    import importlib

    spec = importlib.import_module("robocell.cellfile.spec")
    try:
        return getattr(spec, name)
    except AttributeError:
        raise AttributeError(f"module 'robocell.cellfile' has no attribute {name!r}") from None
