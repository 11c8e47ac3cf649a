"""Running converted scripts. Imports nothing heavy here: ray and torch load only when a
command that runs a script is invoked (``migrator.runtime.launch``)."""
