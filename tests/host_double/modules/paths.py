"""Double of modules/paths.py."""

from modules.paths_internal import data_path, models_path, script_path  # noqa: F401
