"""Double of modules/gradio_extensons.py (A1111) / gradio_extensions.py (Forge): every component's
``__init__`` is patched so that scripts' ``on_after_component`` callbacks fire, and (gradio 4, as
Forge does) gradio is kept from writing ``.pyi`` files next to our component subclasses and from
wrapping subclasses' ``__init__`` in ``component_meta.updateable``."""

from __future__ import annotations

import gradio as gr
from modules import script_callbacks, scripts

GRADIO4 = int(gr.__version__.split(".")[0]) >= 4
#: Callbacks fire only while the harness builds the host UI, so that tests which build their own
#: gradio components later (in the same process) do not trigger the extension's callbacks.
active = False
_component_class = gr.components.Component if GRADIO4 else gr.components.IOComponent
_original_init = _component_class.__init__


def _component_init(self, *args, **kwargs):
    self.webui_tooltip = kwargs.pop("tooltip", None)
    if not active:
        return _original_init(self, *args, **kwargs)
    if scripts.scripts_current is not None:
        scripts.scripts_current.before_component(self, **kwargs)
    result = _original_init(self, *args, **kwargs)
    script_callbacks.after_component_callback(self, **kwargs)
    if scripts.scripts_current is not None:
        scripts.scripts_current.after_component(self, **kwargs)
    return result


if getattr(_component_class.__init__, "__name__", "") != "_component_init":
    _component_class.__init__ = _component_init

if GRADIO4:
    import gradio.component_meta

    _original_pyi = gradio.component_meta.create_or_modify_pyi

    def _create_or_modify_pyi(component_class, class_name, events):
        if hasattr(component_class, "webui_do_not_create_gradio_pyi_thank_you"):
            return
        _original_pyi(component_class, class_name, events)

    gradio.component_meta.create_or_modify_pyi = _create_or_modify_pyi
    # as Forge does ("this function is broken": it drops positional arguments a subclass passes on)
    gradio.component_meta.updateable = lambda function: function
