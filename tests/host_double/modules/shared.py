"""Double of modules/shared.py: opts, cmd_opts, state, prompt_styles."""

from types import SimpleNamespace

from modules import options, styles
from modules.options import OptionInfo, options_section
from modules.paths_internal import data_path, models_path, script_path  # noqa: F401

cmd_opts = SimpleNamespace(nowebui=False, use_cpu=[], lowvram=False, medvram=False, api=True)
# modules/shared_options.py: the built-in categories, and a few built-in options in their sections
# ("Interrogate" has no category in v1.10.1).
options.categories.register_category("saving", "Saving images")
options.categories.register_category("sd", "Stable Diffusion")
options.categories.register_category("ui", "User Interface")
options.categories.register_category("system", "System")
options.categories.register_category("postprocessing", "Postprocessing")
options.categories.register_category("training", "Training")
opts = options.Options({
    **options_section(("system", "System", "system"), {
        "show_warnings": OptionInfo(False, "Show warnings in console."),
    }),
    **options_section(("interrogate", "Interrogate"), {
        "interrogate_keep_models_in_memory": OptionInfo(False, "Keep models in VRAM"),
    }),
    **options_section(("infotext", "Infotext", "ui"), {
        "infotext_styles": OptionInfo("Apply if any", "Infer styles from prompts of pasted infotext"),
        "infotext_skip_pasting": OptionInfo([], "Disregard fields from pasted infotext"),
    }),
})
state = SimpleNamespace(interrupted=False, skipped=False, stopping_generation=False, job_count=-1)
prompt_styles = styles.StyleDatabase()
