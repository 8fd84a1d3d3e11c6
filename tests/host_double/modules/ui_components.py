"""Double of modules/ui_components.py: ``ToolButton`` and ``InputAccordion``.

``ToolButton`` is defined as in each host: A1111 1.10.1 (gradio 3) puts ``FormComponent`` first, so the
tool buttons of a row share one Form; Forge (gradio 4) puts ``gr.Button`` first.

On gradio 3 (A1111) ``InputAccordion`` is a class; on gradio 4 (Forge) it is a factory function
around ``InputAccordionImpl``, as in each host. Its value is a hidden checkbox that follows the
accordion's open state.
"""

from __future__ import annotations

from functools import wraps

import gradio as gr
from modules import gradio_extensions  # noqa: F401  (the host imports it before any UI is built)

GRADIO4 = int(gr.__version__.split(".")[0]) >= 4
_JS = "js" if GRADIO4 else "_js"


class FormComponent:
    webui_do_not_create_gradio_pyi_thank_you = True

    def get_expected_parent(self):
        return gr.components.Form


if GRADIO4:

    class ToolButton(gr.Button, FormComponent):
        """Forge: gr.Button comes first, so gradio 4 does not wrap the button in a Form."""

        @wraps(gr.Button.__init__)
        def __init__(self, value="", *args, elem_classes=None, **kwargs):
            elem_classes = elem_classes or []
            super().__init__(*args, elem_classes=["tool", *elem_classes], value=value, **kwargs)

        def get_block_name(self):
            return "button"

else:

    class ToolButton(FormComponent, gr.Button):
        """A1111 1.10.1: the tool buttons of one row share one gradio Form."""

        def __init__(self, *args, **kwargs):
            classes = kwargs.pop("elem_classes", [])
            super().__init__(*args, elem_classes=["tool", *classes], **kwargs)

        def get_block_name(self):
            return "button"


class InputAccordionImpl(gr.Checkbox):
    """A gr.Accordion usable as an input: True when open."""

    webui_do_not_create_gradio_pyi_thank_you = True
    global_index = 0

    # Forge wraps it: gradio 4 reads a component's config from its __init__ signature (elem_id, visible...)
    @(wraps(gr.Checkbox.__init__) if GRADIO4 else (lambda init: init))
    def __init__(self, value=None, setup=False, **kwargs):
        if not setup:
            super().__init__(value=value, **kwargs)
            return
        self.accordion_id = kwargs.get("elem_id")
        if self.accordion_id is None:
            self.accordion_id = f"input-accordion-{InputAccordionImpl.global_index}"
            InputAccordionImpl.global_index += 1
        super().__init__(value=value, **{**kwargs, "elem_id": f"{self.accordion_id}-checkbox", "visible": False})
        self.change(fn=None, inputs=[self],
                    **{_JS: 'function(checked){ inputAccordionChecked("' + self.accordion_id + '", checked); }'})
        self.accordion = gr.Accordion(**{**kwargs, "elem_id": self.accordion_id,
                                         "label": kwargs.get("label", "Accordion"),
                                         "elem_classes": ["input-accordion"], "open": value})

    def extra(self):
        return gr.Column(elem_id=self.accordion_id + "-extra", elem_classes="input-accordion-extra", min_width=0)

    def __enter__(self):
        self.accordion.__enter__()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.accordion.__exit__(exc_type, exc_val, exc_tb)

    def get_block_name(self):
        return "checkbox"


if GRADIO4:

    def InputAccordion(value=None, **kwargs):
        return InputAccordionImpl(value=value, setup=True, **kwargs)

else:

    class InputAccordion(InputAccordionImpl):  # A1111: a class
        def __init__(self, value, **kwargs):
            super().__init__(value=value, setup=True, **kwargs)
