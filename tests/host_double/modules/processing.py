"""Double of modules/processing.py: the processing objects and ``process_images`` with the host's
order of events, minus the diffusion model.

Order (host line numbers of v1.10.1): ``scripts.before_process`` (:821) → ``setup_prompts``
(styles; all_prompts, all_hr_prompts) (:899) → all_seeds/all_subseeds (:901-909) →
``scripts.process`` (:915) → ``p.init`` (:921) → per batch: slices, ``before_process_batch``
(:952), extra-network parsing (hires prompts slice), ``process_batch`` (:964), sampling, infotext
per image → ``scripts.postprocess``. Each batch starts by clearing ``state.skipped`` and stops the job
when ``state.interrupted`` or ``state.stopping_generation`` is set (:935-939). Sampling is replaced by
:class:`GeneratedImage`, which records exactly the prompts that would have conditioned the image.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from modules import infotext_utils, shared


@dataclass
class GeneratedImage:
    """What the sampler would have been given for one image."""

    prompt: str
    negative_prompt: str
    seed: int
    hr_prompt: str | None = None


@dataclass(repr=False)
class StableDiffusionProcessing:
    prompt: Any = ""
    prompt_for_display: str | None = None
    negative_prompt: Any = ""
    styles: list[str] | None = None
    seed: Any = -1
    subseed: int = -1
    subseed_strength: float = 0
    sampler_name: str = "Euler a"
    batch_size: int = 1
    n_iter: int = 1
    steps: int = 20
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    extra_generation_params: dict[str, Any] | None = None
    override_settings: dict[str, Any] | None = None
    do_not_save_samples: bool = True

    scripts: Any = field(default=None, init=False)
    script_args: Any = field(default=None, init=False)
    all_prompts: list | None = field(default=None, init=False)
    all_negative_prompts: list | None = field(default=None, init=False)
    all_seeds: list | None = field(default=None, init=False)
    all_subseeds: list | None = field(default=None, init=False)
    iteration: int = field(default=0, init=False)
    main_prompt: str | None = field(default=None, init=False)
    main_negative_prompt: str | None = field(default=None, init=False)
    prompts: list | None = field(default=None, init=False)
    negative_prompts: list | None = field(default=None, init=False)
    seeds: list | None = field(default=None, init=False)
    subseeds: list | None = field(default=None, init=False)
    is_api: bool = field(default=False, init=False)

    def __post_init__(self):
        if self.styles is None:
            self.styles = []
        self.extra_generation_params = self.extra_generation_params or {}
        self.override_settings = self.override_settings or {}
        self.script_args = self.script_args or ()

    def setup_prompts(self):
        if isinstance(self.prompt, list):
            self.all_prompts = self.prompt
        elif isinstance(self.negative_prompt, list):
            self.all_prompts = [self.prompt] * len(self.negative_prompt)
        else:
            self.all_prompts = self.batch_size * self.n_iter * [self.prompt]
        if isinstance(self.negative_prompt, list):
            self.all_negative_prompts = self.negative_prompt
        else:
            self.all_negative_prompts = [self.negative_prompt] * len(self.all_prompts)
        if len(self.all_prompts) != len(self.all_negative_prompts):
            raise RuntimeError("different number of prompts and negative prompts")
        styles = shared.prompt_styles
        self.all_prompts = [styles.apply_styles_to_prompt(x, self.styles) for x in self.all_prompts]
        self.all_negative_prompts = [styles.apply_negative_styles_to_prompt(x, self.styles)
                                     for x in self.all_negative_prompts]
        self.main_prompt = self.all_prompts[0]
        self.main_negative_prompt = self.all_negative_prompts[0]

    def init(self, all_prompts, all_seeds, all_subseeds):
        pass

    def parse_extra_network_prompts(self):
        pass

    def hr_prompt_for(self, index: int) -> str | None:
        return None


@dataclass(repr=False)
class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing):
    enable_hr: bool = False
    denoising_strength: float = 0.75
    hr_scale: float = 2.0
    hr_upscaler: str = "Latent"
    hr_prompt: Any = ""
    hr_negative_prompt: Any = ""
    all_hr_prompts: list | None = field(default=None, init=False)
    all_hr_negative_prompts: list | None = field(default=None, init=False)
    hr_prompts: list | None = field(default=None, init=False)

    def setup_prompts(self):
        super().setup_prompts()
        if not self.enable_hr:
            return
        if self.hr_prompt == "":
            self.hr_prompt = self.prompt
        if self.hr_negative_prompt == "":
            self.hr_negative_prompt = self.negative_prompt
        if isinstance(self.hr_prompt, list):
            self.all_hr_prompts = self.hr_prompt
        else:
            self.all_hr_prompts = self.batch_size * self.n_iter * [self.hr_prompt]
        if isinstance(self.hr_negative_prompt, list):
            self.all_hr_negative_prompts = self.hr_negative_prompt
        else:
            self.all_hr_negative_prompts = self.batch_size * self.n_iter * [self.hr_negative_prompt]
        styles = shared.prompt_styles
        self.all_hr_prompts = [styles.apply_styles_to_prompt(x, self.styles) for x in self.all_hr_prompts]
        self.all_hr_negative_prompts = [styles.apply_negative_styles_to_prompt(x, self.styles)
                                        for x in self.all_hr_negative_prompts]

    def init(self, all_prompts, all_seeds, all_subseeds):
        if self.enable_hr:
            self.extra_generation_params["Denoising strength"] = self.denoising_strength

            # the host's own (A1111 :1267, Forge :1299): ``index`` is the image's index within its
            # batch when the host writes an image's infotext, yet it indexes the job's whole list
            def get_hr_prompt(p, index, prompt_text, **kwargs):
                hr_prompt = p.all_hr_prompts[index]
                return hr_prompt if hr_prompt != prompt_text else None

            self.extra_generation_params["Hires prompt"] = get_hr_prompt
            self.extra_generation_params["Hires upscale"] = self.hr_scale
            self.extra_generation_params["Hires upscaler"] = self.hr_upscaler

    def parse_extra_network_prompts(self):
        if self.enable_hr:
            n, size = self.iteration, self.batch_size
            self.hr_prompts = self.all_hr_prompts[n * size:(n + 1) * size]

    def hr_prompt_for(self, index: int) -> str | None:
        return self.hr_prompts[index] if self.enable_hr else None


@dataclass(repr=False)
class StableDiffusionProcessingImg2Img(StableDiffusionProcessing):
    init_images: list | None = None
    denoising_strength: float = 0.75

    def init(self, all_prompts, all_seeds, all_subseeds):
        self.extra_generation_params["Denoising strength"] = self.denoising_strength


@dataclass
class Processed:
    images: list[GeneratedImage]
    infotexts: list[str]
    all_prompts: list[str]
    all_seeds: list[int]
    prompt: Any
    extra_generation_params: dict[str, Any]
    all_subseeds: list[int] = field(default_factory=list)
    batch_size: int = 1

    def infotext(self, p, index):
        """The host's ``Processed.infotext`` (:609): the job's whole lists, indexed across batches."""
        return create_infotext(p, self.all_prompts, self.all_seeds, self.all_subseeds, comments=[],
                               position_in_batch=index % self.batch_size, iteration=index // self.batch_size)


def get_fixed_seed(seed):
    if seed == "" or seed is None:
        seed = -1
    elif isinstance(seed, str):
        try:
            seed = int(seed)
        except Exception:
            seed = -1
    if seed == -1:
        return int(random.randrange(4294967294))
    return seed


def fix_seed(p):
    p.seed = get_fixed_seed(p.seed)
    p.subseed = get_fixed_seed(p.subseed)


def create_infotext(p, all_prompts, all_seeds, all_subseeds, comments=None, iteration=0, position_in_batch=0,
                    use_main_prompt=False, index=None, all_negative_prompts=None):
    """The host's infotext: prompt, negative prompt, then ``key: value`` pairs (quoted when needed)."""
    if use_main_prompt:
        index = 0
    elif index is None:
        index = position_in_batch + iteration * p.batch_size
    if all_negative_prompts is None:
        all_negative_prompts = p.all_negative_prompts
    prompt_text = p.main_prompt if use_main_prompt else all_prompts[index]
    negative_prompt = p.main_negative_prompt if use_main_prompt else all_negative_prompts[index]
    generation_params = {
        "Steps": p.steps,
        "Sampler": p.sampler_name,
        "CFG scale": p.cfg_scale,
        "Seed": p.all_seeds[0] if use_main_prompt else all_seeds[index],
        "Size": f"{p.width}x{p.height}",
        "Denoising strength": p.extra_generation_params.get("Denoising strength"),
        **p.extra_generation_params,
    }
    for key, value in generation_params.items():
        if isinstance(value, list):
            generation_params[key] = value[index]
        elif callable(value):
            generation_params[key] = value(**locals())
    text = ", ".join(k if k == v else f"{k}: {infotext_utils.quote(v)}"
                     for k, v in generation_params.items() if v is not None)
    negative_text = f"\nNegative prompt: {negative_prompt}" if negative_prompt else ""
    return f"{prompt_text}{negative_text}\n{text}".strip()


def process_images(p: StableDiffusionProcessing) -> Processed:
    if p.scripts is not None:
        p.scripts.before_process(p)
    return process_images_inner(p)


def process_images_inner(p: StableDiffusionProcessing) -> Processed:
    seed = get_fixed_seed(p.seed) if not isinstance(p.seed, list) else p.seed
    subseed = get_fixed_seed(p.subseed)
    p.setup_prompts()
    if isinstance(seed, list):
        p.all_seeds = seed
    else:
        p.all_seeds = [int(seed) + (x if p.subseed_strength == 0 else 0) for x in range(len(p.all_prompts))]
    p.all_subseeds = [int(subseed) + x for x in range(len(p.all_prompts))]
    if p.scripts is not None:
        p.scripts.process(p)
    p.init(p.all_prompts, p.all_seeds, p.all_subseeds)

    images: list[GeneratedImage] = []
    infotexts: list[str] = []
    for n in range(p.n_iter):
        p.iteration = n
        if shared.state.skipped:  # :935-939: Skip skips one batch, Interrupt / stop generating end the job
            shared.state.skipped = False
        if shared.state.interrupted or shared.state.stopping_generation:
            break
        size = p.batch_size
        p.prompts = p.all_prompts[n * size:(n + 1) * size]
        p.negative_prompts = p.all_negative_prompts[n * size:(n + 1) * size]
        p.seeds = p.all_seeds[n * size:(n + 1) * size]
        p.subseeds = p.all_subseeds[n * size:(n + 1) * size]
        if p.scripts is not None:
            p.scripts.before_process_batch(p, batch_number=n, prompts=p.prompts, seeds=p.seeds, subseeds=p.subseeds)
        if len(p.prompts) == 0:
            break
        p.parse_extra_network_prompts()
        if p.scripts is not None:
            p.scripts.process_batch(p, batch_number=n, prompts=p.prompts, seeds=p.seeds, subseeds=p.subseeds)
        for i, prompt in enumerate(p.prompts):
            images.append(GeneratedImage(prompt, p.negative_prompts[i], p.seeds[i], p.hr_prompt_for(i)))
            # as the host does (:1026-1027, :1086): the batch's own lists, indexed within the batch
            infotexts.append(create_infotext(p, p.prompts, p.seeds, p.subseeds, index=i,
                                             all_negative_prompts=p.negative_prompts))
    processed = Processed(images, infotexts, p.all_prompts, p.all_seeds, p.prompt, p.extra_generation_params,
                          p.all_subseeds, p.batch_size)
    if p.scripts is not None:
        p.scripts.postprocess(p, processed)
    return processed
