"""``python -m migrator``: the ``migrate`` command (``migrator.launch``)."""

from migrator.launch import main

main()
