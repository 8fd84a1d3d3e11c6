"""Double of modules/paths_internal.py: the folders the host decides."""

import os
import tempfile

script_path = os.path.join(tempfile.gettempdir(), "host_double_webui")
data_path = script_path
models_path = os.path.join(data_path, "models")
extensions_dir = os.path.join(data_path, "extensions")
