"""Double of modules/shared.py: opts, cmd_opts, state, prompt_styles."""

from types import SimpleNamespace

from modules import options, styles
from modules.options import OptionInfo, options_section  # noqa: F401
from modules.paths_internal import data_path, models_path, script_path  # noqa: F401

cmd_opts = SimpleNamespace(nowebui=False, use_cpu=[], lowvram=False, medvram=False, api=True)
opts = options.Options({
    "infotext_styles": OptionInfo("Apply if any", "Infer styles from prompts of pasted infotext"),
    "infotext_skip_pasting": OptionInfo([], "Disregard fields from pasted infotext"),
    "interrogate_keep_models_in_memory": OptionInfo(False, "Keep models in VRAM"),
})
state = SimpleNamespace(interrupted=False, skipped=False, stopping_generation=False, job_count=-1)
prompt_styles = styles.StyleDatabase()
