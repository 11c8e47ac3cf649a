"""One module per migration. The registry (``migrator.registry``) finds them; a module's name is its id.

Modules starting with ``_`` hold helpers shared by several codemods.
"""
