"""``python -m lib_tagger``: upsample prompts, list models, interrogate and caption images."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict

from .models.registry import GGUF_FILES, MODELS
from .settings import (
    IDENTITIES,
    LENGTHS,
    NL_POSITIONS,
    OUTPUT_FORMATS,
    POSITIONS,
    PRECISIONS,
    PRESETS,
    RATINGS,
    TASKS,
    SettingsError,
    UpsampleSettings,
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m lib_tagger", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    up = sub.add_parser("upsample", help="add fitting tags to a prompt with a tag model")
    up.add_argument("--model", default=UpsampleSettings().model,
                    help=f"a known model ({', '.join(MODELS)}) or a local folder / .gguf file")
    up.add_argument("--prompt", required=True, help="the prompt, in A1111 syntax")
    up.add_argument("--width", type=int, default=1024)
    up.add_argument("--height", type=int, default=1024)
    up.add_argument("--rating", choices=RATINGS, default="auto")
    up.add_argument("--length", choices=LENGTHS, default="long",
                    help="how many tags to aim for (TIPO reads medium as long)")
    up.add_argument("--identity", choices=IDENTITIES, default="none")
    up.add_argument("--ban", default="", help="tags never to add, comma separated; * wildcards and /regex/")
    up.add_argument("--position", choices=POSITIONS, default="end")
    up.add_argument("--nl-prompt", default="", help="TIPO: a natural-language prompt (caption)")
    up.add_argument("--task", choices=TASKS, default="extend_tags",
                    help="TIPO: extend_tags (tags → more tags), add_caption (tags → tags + a caption), "
                         "caption_to_tags, extend_both (tags + caption → both extended)")
    up.add_argument("--nl-length", choices=LENGTHS, default="long", help="TIPO: caption length")
    up.add_argument("--nl-position", choices=NL_POSITIONS, default="end",
                    help="TIPO: where the caption goes (after the tags, a new line, before the first BREAK)")
    up.add_argument("--output-format", choices=OUTPUT_FORMATS, default="insert",
                    help="insert (keep the prompt, add at one place) or a template that rebuilds the prompt "
                         "in the model's order (weights and BREAK are not kept)")
    up.add_argument("--preset", choices=("custom", *PRESETS), default="custom")
    up.add_argument("--temperature", type=float, default=UpsampleSettings().temperature)
    up.add_argument("--top-p", type=float, default=UpsampleSettings().top_p)
    up.add_argument("--top-k", type=int, default=UpsampleSettings().top_k)
    up.add_argument("--min-p", type=float, default=UpsampleSettings().min_p)
    up.add_argument("--max-new-tokens", type=int, default=UpsampleSettings().max_new_tokens)
    up.add_argument("--seed", type=int, default=0)
    up.add_argument("--backend", choices=("auto", "llama-cpp", "torch"), default="auto")
    up.add_argument("--quant", choices=tuple(GGUF_FILES), default="q8_0",
                    help="which GGUF file of a DanTagGen model to use (TIPO publishes F16 only)")
    up.add_argument("--device", default="auto", help="auto, cpu or cuda")
    up.add_argument("--precision", choices=PRECISIONS, default="auto",
                    help="weights of torch models: auto (8-bit on a CPU that runs it), fp32, int8, or q8_0 "
                         "(converted once to a GGUF and run by llama.cpp: fastest for one prompt at a time)")
    up.add_argument("--models-dir", default=None, help="where model files live (default: the HF cache)")
    up.add_argument("--format", dest="prompt_format", default=None,
                    help="prompt format of a local model path: dart-sft, dart-base, dantaggen, dantaggen-quality, tipo")
    up.add_argument("--dry-run", action="store_true", help="print the model input; load no model")
    up.add_argument("--json", action="store_true", help="JSON output")
    up.set_defaults(handler=_cmd_upsample)

    models = sub.add_parser("models", help="list the known tag models and interrogators")
    models.add_argument("--json", action="store_true")
    models.set_defaults(handler=_cmd_models)

    try:
        from .interrogate.cli import add_subcommands
    except ImportError:  # pragma: no cover - the JoyTag package is part of the project
        pass
    else:
        add_subcommands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if hasattr(args, "func"):  # JoyTag's sub-commands take only the arguments
            return int(args.func(args) or 0)
        return int(args.handler(args, parser) or 0)
    except KeyboardInterrupt:  # Ctrl-C outside captioning (which reports what it did): one line
        print("interrupted", file=sys.stderr)
        return 130


def _settings_from(args: argparse.Namespace) -> UpsampleSettings:
    return UpsampleSettings(
        enabled=True, model=args.model, length=args.length, rating=args.rating, identity=args.identity,
        preset=args.preset, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k, min_p=args.min_p,
        ban_tags=args.ban, position=args.position, seed_mode="fixed", seed=args.seed,
        max_new_tokens=args.max_new_tokens, nl_prompt=args.nl_prompt, task=args.task, nl_length=args.nl_length,
        nl_position=args.nl_position, output_format=args.output_format, precision=args.precision,
    )


def _cmd_upsample(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.width <= 0 or args.height <= 0:
        parser.error("--width and --height must be positive")
    try:
        settings = _settings_from(args)
    except SettingsError as exc:
        parser.error(str(exc))
    from .models.manager import ModelManager

    manager = ModelManager(models_dir=args.models_dir, device=args.device, backend=args.backend,
                           quant=args.quant)
    try:
        source = manager.resolve(args.model, args.prompt_format)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        parser.error(str(exc).strip("'\""))
    if args.dry_run:
        from .upsample import prepare_prompt

        prepared = prepare_prompt(args.prompt, settings, args.width, args.height, source.prompt_format)
        if args.json:
            out = {"model": source.label, "backend": source.backend, "format": source.prompt_format,
                   "fields": asdict(prepared.fields), "model_input": prepared.model_input}
            print(json.dumps(out, ensure_ascii=False, indent=2))
        else:
            print(prepared.model_input)
        return 0

    from .upsample import upsample_prompts

    try:
        result = upsample_prompts([args.prompt], settings, seeds=[args.seed], width=args.width,
                                  height=args.height, manager=manager)[0]
    except Exception as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        manager.unload()
    if args.json:
        print(json.dumps({"prompt": result.prompt, "new_tags": result.new_tags, "nl_text": result.nl_text,
                          "model_input": result.model_input, "seed": result.seed, "timings": result.timings},
                         ensure_ascii=False, indent=2))
    else:
        print(result.prompt)
    return 0


def _cmd_models(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .interrogate.specs import INTERROGATORS

    rows = [{"name": s.name, "kind": "upsampler", "repo": s.repo, "format": s.prompt_format,
             "architecture": s.architecture, "gguf": s.gguf, "description": s.description} for s in MODELS.values()]
    rows += [{"name": s.name, "kind": "interrogator", "repo": s.repo, "family": s.family,
              "architecture": s.architecture, "description": s.description} for s in INTERROGATORS.values()]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for kind, title in (("upsampler", "Tag models (upsample)"), ("interrogator", "Interrogators")):
            print(f"{title}:")
            for row in rows:
                if row["kind"] == kind:
                    print(f"  {row['name']:<26} {row['repo']:<38} {row['description']}")
    return 0
