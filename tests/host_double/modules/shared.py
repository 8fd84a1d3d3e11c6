"""Double of modules/shared.py: opts, cmd_opts, state, prompt_styles."""

from types import SimpleNamespace

from modules import options, styles
from modules.options import OptionInfo, options_section
from modules.paths_internal import data_path, models_path, script_path  # noqa: F401

cmd_opts = SimpleNamespace(nowebui=False, use_cpu=[], lowvram=False, medvram=False, api=True, api_auth=None)
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


class State:
    """modules/shared_state.py's job flags: Interrupt, Skip and "stop after this image" set them, ``begin()``
    (the start of every job) clears them."""

    def __init__(self):
        self.interrupted = self.skipped = self.stopping_generation = False
        self.job_count = -1

    def interrupt(self):
        self.interrupted = True

    def skip(self):
        self.skipped = True

    def stop_generating(self):
        self.stopping_generation = True

    def begin(self, job="(unknown)"):
        self.interrupted = self.skipped = self.stopping_generation = False
        self.job_count = -1


state = State()
prompt_styles = styles.StyleDatabase()
