"""A typed facade over the WebUI's ``modules`` (only the Script base class and the callback registry
are imported elsewhere, by ``script.py`` and ``__init__.py``).

Covers AUTOMATIC1111 1.10 (gradio 3) and Forge/reForge (gradio 4 or 3): ``InputAccordion`` as a
class or a factory, freeing VRAM and the device (Forge's memory manager where there is one), options,
styles, the queue lock, the X/Y/Z script.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

TAGGER_FOLDER = "tagger"
#: Room asked of Forge per byte of weights (Forge's load_models_gpu asks 1.3x a model's size).
FORGE_LOAD_FACTOR = 1.3


def input_accordion(value: bool, *, label: str, elem_id: str) -> Any:
    """The host's ``InputAccordion`` (a class in A1111, a factory in Forge); its value is the checkbox."""
    from modules.ui_components import InputAccordion

    return InputAccordion(value, label=label, elem_id=elem_id)


def accordion_extra(accordion: Any) -> Any:
    """The context for components in the header of the host's ``InputAccordion`` (shown while it is
    closed; the host's JS moves them there), or a plain ``gr.Column`` inside where it has no header area."""
    extra = getattr(accordion, "extra", None)
    if callable(extra):
        return extra()
    import gradio as gr

    return gr.Column()


def tool_button(value: str, *, elem_id: str, elem_classes: Sequence[str] = (), visible: bool = True) -> Any:
    """The host's ``ToolButton`` (a small icon button; it adds the ``tool`` class), or a plain ``gr.Button``
    with that class where the host has none.

    In A1111 the host's tool buttons of one row share one gradio Form: only a ``ToolButton`` created
    right after one of them lands beside it.
    """
    try:
        from modules.ui_components import ToolButton
    except ImportError:
        import gradio as gr

        return gr.Button(value=value, elem_id=elem_id, elem_classes=["tool", *elem_classes], visible=visible)
    return ToolButton(value=value, elem_id=elem_id, elem_classes=list(elem_classes), visible=visible)


def register_callback(kind: str, callback: Callable[..., Any], *, filename: str) -> None:
    """``script_callbacks.on_<kind>(callback)``, telling the host the registering file where it can take it.

    A1111 1.10 and Forge otherwise find that file with ``inspect.stack()``, which resolves a module for
    every frame: about 70 ms per callback during start-up. The callback gets the same name either way.
    """
    import inspect

    from modules import script_callbacks

    add = getattr(script_callbacks, "add_callback", None)
    callbacks = getattr(script_callbacks, "callback_map", {}).get(f"callbacks_{kind}")
    if callable(add) and callbacks is not None and "filename" in inspect.signature(add).parameters:
        add(callbacks, callback, category=kind, filename=filename)
    else:
        getattr(script_callbacks, f"on_{kind}")(callback)


def editable_dropdown() -> Any:
    """The host's ``DropdownEditable`` for the Settings page (a plain ``gr.Dropdown`` where it has none).

    Settings components must not take ``allow_custom_value`` as an argument: the host replays the
    arguments into ``gr.update()``, which gradio 3.41 rejects, breaking the whole Settings page.
    """
    try:
        from modules.ui_components import DropdownEditable
    except ImportError:
        import gradio as gr

        return gr.Dropdown
    return DropdownEditable


def default_models_dir() -> str:
    """``<models_path>/tagger``."""
    from modules import paths_internal

    return os.path.join(paths_internal.models_path, TAGGER_FOLDER)


def opt(key: str, default: Any = None) -> Any:
    """A value from ``shared.opts``, or ``default`` when the option does not exist (yet)."""
    from modules import shared

    return getattr(shared.opts, key, default)


def add_option(key: str, default: Any, label: str, component: Any = None, component_args: Any = None,
               *, section: tuple[str, str], category: tuple[str, str] | None = None, info: str = "",
               onchange: Callable[[], None] | None = None, restrict_api: bool = False) -> None:
    """Register one setting in the host's Settings page, in ``section`` ``(id, label)``.

    ``category`` ``(id, label)`` groups the section under a heading where the host has setting categories
    (A1111 1.7+, Forge); older hosts show the section without one. ``restrict_api``: ``POST /sdapi/v1/options``
    cannot change it (the host ignores it there), only the Settings page can.
    """
    import inspect

    from modules import shared

    extra = {"category_id": category[0]} if category is not None and _register_category(*category) else {}
    if restrict_api and "restrict_api" in inspect.signature(shared.OptionInfo).parameters:
        extra["restrict_api"] = True
    option = shared.OptionInfo(default, label, component, component_args, onchange=onchange, section=section,
                               **extra)
    if info:
        option = option.info(info)
    shared.opts.add_option(key, option)


def _register_category(category_id: str, label: str) -> bool:
    """Register a Settings category (a no-op when it exists); False where the host has no categories."""
    try:
        from modules.options import categories
    except ImportError:
        return False
    categories.register_category(category_id, label)
    return True


def api_enabled() -> bool:
    """True when the host serves its HTTP API: ``--api``, or ``--nowebui`` (API only)."""
    from modules import shared

    return bool(getattr(shared.cmd_opts, "api", False) or getattr(shared.cmd_opts, "nowebui", False))


def api_dependencies() -> list[Any]:
    """FastAPI dependencies that guard a route the way the host guards ``/sdapi/v1/*``.

    With ``--api-auth user:password[,user2:password2]`` a request needs one of those HTTP Basic logins (else
    401), as ``Api.add_api_route`` requires for the host's own routes (modules/api/api.py). The host keeps its
    check on an object extensions cannot reach, so this is the same check over the same flag. Without the flag:
    no dependency, like the host.
    """
    from modules import shared

    spec = getattr(shared.cmd_opts, "api_auth", None)
    if not spec:
        return []
    from .api_route import basic_auth_dependency

    return [basic_auth_dependency(spec)]


def stop_requested() -> bool:
    """True when the user pressed Interrupt or Skip (or "stop after this image") for the running job.

    The host resets these flags when a job begins, so outside a job (preview button, our routes) a stale
    flag may remain: read this only while a generation runs.
    """
    from modules import shared

    state = shared.state
    return bool(getattr(state, "interrupted", False) or getattr(state, "skipped", False)
                or getattr(state, "stopping_generation", False))


def forge_memory() -> Any | None:
    """Forge's memory manager, ``backend.memory_management`` (Forge's ``modules.devices`` imports it);
    None on A1111, which has none."""
    from modules import devices

    memory = getattr(devices, "memory_management", None)
    return memory if callable(getattr(memory, "free_memory", None)) else None


def _is_cpu(device: Any) -> bool:
    return getattr(device, "type", str(device)) == "cpu"


def host_cpu_forced(task: str = "tagger") -> bool:
    """True when the host would run ``task`` on the CPU.

    A1111: ``--use-cpu task`` or ``--use-cpu all`` (``devices.get_device_for``). Forge's
    ``get_device_for`` ignores the task, so there: the same flags read from the command line, and the
    device Forge's memory manager gives its own interrogators and text encoders (the CPU with
    ``--always-cpu``, in low-VRAM states or without fp16 on the GPU).
    """
    from modules import devices, shared

    memory = forge_memory()
    if memory is None:
        return _is_cpu(devices.get_device_for(task))
    use_cpu = getattr(shared.cmd_opts, "use_cpu", None) or []
    return task in use_cpu or "all" in use_cpu or _is_cpu(memory.text_encoder_device())


def free_vram(gpu_bytes: int | None = None) -> None:
    """Make room on the GPU before a tag model loads; ``gpu_bytes``: about what it will put there (0:
    nothing, None: not known).

    A1111: like its built-in interrogator, everything to the CPU, then ``torch_gc`` (on Forge both do
    next to nothing). Forge: its memory manager frees that much plus its inference reserve on its own
    device, unloading its models only as far as needed, as before its own interrogators run.
    """
    memory = forge_memory()
    if memory is None:
        from modules import devices, lowvram

        lowvram.send_everything_to_cpu()
        devices.torch_gc()
        return
    device = memory.get_torch_device()
    if gpu_bytes == 0 or _is_cpu(device):
        return
    memory.free_memory(int((gpu_bytes or 0) * FORGE_LOAD_FACTOR) + memory.minimum_inference_memory(), device)


@contextlib.contextmanager
def gpu_lock() -> Iterator[None]:
    """Hold the host's queue lock (no generation runs on the GPU meanwhile)."""
    from modules.call_queue import queue_lock

    with queue_lock:
        yield


def warn(message: str) -> None:
    """One line on the console's stderr, where the host prints its own warnings (no traceback)."""
    import sys

    print(message, file=sys.stderr)


def report(message: str, *, traceback: bool = True) -> None:
    """Print ``message`` the host's way, with the current exception's traceback unless told not to."""
    from modules import errors

    errors.report(message, exc_info=traceback)


def fix_seed(p: Any) -> None:
    """Resolve ``p.seed == -1`` now (as the host would later)."""
    from modules import processing

    processing.fix_seed(p)


def apply_negative_styles(negative_prompt: str, styles: list[str]) -> str:
    """The negative prompt with the named styles applied, as the host applies them."""
    from modules import shared

    return shared.prompt_styles.apply_negative_styles_to_prompt(negative_prompt, styles)


def xyz_grid_module() -> Any | None:
    """The loaded module of the built-in X/Y/Z plot script, or None when it is absent."""
    from modules import scripts

    for data in scripts.scripts_data:
        if data.script_class.__module__ in ("xyz_grid.py", "xy_grid.py") and hasattr(data.module, "AxisOption"):
            return data.module
    return None
