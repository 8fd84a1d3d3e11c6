"""Where our models run and how room is made for them: A1111's devices/lowvram, Forge's memory manager.

Forge's side is the host double turned Forge by ``tests/host_double/forge.py`` (its modules/devices.py,
lowvram.py and backend/memory_management.py as far as we use them).
"""

from __future__ import annotations

import pytest

from tests.host_double.forge import as_forge
from tests.host_double.harness import install

GIB = 1024**3


@pytest.fixture
def host(webui, monkeypatch):
    """The double's modules; cmd_opts.use_cpu and the device call records reset for each test."""
    install()
    from modules import devices, shared

    monkeypatch.setattr(shared.cmd_opts, "use_cpu", [])
    devices.calls.clear()
    return devices


def manager_device() -> str:
    from tagger_webui import settings_page

    return settings_page.manager_options()["device"]


@pytest.mark.parametrize(("use_cpu", "device"), [([], "auto"), (["tagger"], "cpu"), (["all"], "cpu"),
                                                 (["interrogate"], "auto")])
def test_a1111_auto_honours_use_cpu(host, monkeypatch, use_cpu, device):
    from modules import shared

    monkeypatch.setattr(shared.cmd_opts, "use_cpu", use_cpu)
    assert manager_device() == device


def test_a1111_frees_vram_like_its_interrogator(host):
    from tagger_webui import host as facade

    facade.free_vram(400_000_000)
    assert host.calls == ["send_everything_to_cpu", "torch_gc"]


@pytest.mark.parametrize(("use_cpu", "device"), [([], "auto"), (["tagger"], "cpu"), (["all"], "cpu")])
def test_forge_auto_honours_use_cpu_although_its_get_device_for_ignores_the_task(host, monkeypatch, use_cpu,
                                                                                   device):
    from modules import shared

    as_forge(monkeypatch)
    monkeypatch.setattr(shared.cmd_opts, "use_cpu", use_cpu)
    assert manager_device() == device


@pytest.mark.parametrize("state", ["always_cpu", "low_vram", "no_fp16"])
def test_forge_auto_follows_forges_own_device_for_interrogators(host, monkeypatch, state):
    memory = as_forge(monkeypatch)
    if state == "always_cpu":
        memory.cpu_state = memory.CPUState.CPU
    elif state == "low_vram":
        memory.vram_state = memory.VRAMState.LOW_VRAM
    else:
        memory.fp16_usable = False
    assert manager_device() == "cpu"


def test_forge_makes_room_through_its_memory_manager(host, monkeypatch):
    from tagger_webui import host as facade

    memory = as_forge(monkeypatch)
    facade.free_vram(400_000_000)
    assert memory.calls == [("free_memory", 520_000_000 + GIB, "cuda:0")]
    assert host.calls == []  # not A1111's lowvram/torch_gc path
    memory.calls.clear()
    facade.free_vram()  # size unknown (JoyTag): Forge's inference reserve
    facade.free_vram(0)  # the model stays on the CPU: nothing to free
    assert memory.calls == [("free_memory", GIB, "cuda:0")]
    memory.calls.clear()
    memory.cpu_state = memory.CPUState.CPU  # --always-cpu
    facade.free_vram(400_000_000)
    assert memory.calls == []


def test_forge_is_asked_for_the_models_size_before_it_loads(host, monkeypatch, tmp_path, one_torch_thread):
    from lib_tagger.models.manager import ModelManager
    from tagger_webui import host as facade
    from tests.factories.torch_models import make_dart_folder

    memory = as_forge(monkeypatch)
    folder = make_dart_folder(tmp_path / "tiny-dart")
    size = (folder / "model.safetensors").stat().st_size
    manager = ModelManager(device="auto")
    manager.before_load = facade.free_vram
    with manager.use(str(folder)):
        pass
    assert memory.calls == [("free_memory", int(size * 1.3) + GIB, "cuda:0")]
    memory.calls.clear()
    manager.unload()
    manager.configure(device="cpu")
    with manager.use(str(folder)):
        pass
    assert memory.calls == []
    manager.unload()


def test_forge_joytag_makes_room_and_follows_the_device_choice(host, monkeypatch, tmp_path):
    from modules import shared

    from lib_tagger.interrogate.loading import unload_interrogator
    from tagger_webui import host as facade
    from tagger_webui import interrogate_service, settings_page
    from tests.factories.joytag_model import save_joytag_checkpoint

    memory = as_forge(monkeypatch)
    checkpoint = save_joytag_checkpoint(tmp_path / "jt", num_blocks=1, tiny=True, seed=3)
    values = {"tagger_joytag_model": str(checkpoint), "tagger_joytag_keep_loaded": False}
    service = interrogate_service.configure(lambda key, default: values.get(key, default), free_memory=facade.free_vram,
                                              device=settings_page.resolve_device)
    try:
        from PIL import Image

        assert service.settings().device == "auto"
        service.tag(Image.new("RGB", (32, 32), (200, 10, 10)))
        assert memory.calls == [("free_memory", GIB, "cuda:0")]
        monkeypatch.setattr(shared.cmd_opts, "use_cpu", ["tagger"])
        assert service.settings().device == "cpu"
        values["tagger_joytag_device"] = "cuda"  # an explicit choice stays
        assert service.settings().device == "cuda"
    finally:
        interrogate_service.configure()
        unload_interrogator()
