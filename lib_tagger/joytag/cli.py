"""The ``interrogate`` and ``caption`` commands of ``python -m lib_tagger``.

:func:`add_subcommands` registers both on an argparse sub-parser set; each parser's ``func``
default takes the parsed arguments and returns the exit status (0 fine, 1 a failure, 2 bad
arguments). :func:`main` runs them stand-alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from lib_tagger.devices import VISION_PRECISIONS
from lib_tagger.joytag.postprocess import DEFAULT_EXCLUDE, SORTS, JoyTagOptions, OptionsError, split_tag_list

DEFAULT_MODEL = "fancyfeast/joytag"


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _count(text: str) -> int:
    return 0 if text.strip() == "0" else _positive(text)


def _add_common(parser: argparse.ArgumentParser, default_exclude: bool) -> None:
    model = parser.add_argument_group("model")
    model.add_argument("--model", default=DEFAULT_MODEL, help="hub repo id or a folder with the JoyTag files")
    model.add_argument("--models-dir", default=None, help="folder for downloaded models (default: HF cache)")
    model.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    model.add_argument("--precision", choices=VISION_PRECISIONS, default="fp32",
                       help="on a CPU: fp32, int8 (~1.5x faster, scores within 0.03) or bf16 (CPUs with native bf16)")
    model.add_argument("--batch-size", type=_positive, default=8, help="images per model call (default 8)")
    tags = parser.add_argument_group("tags")
    tags.add_argument("--threshold", type=_threshold, default=0.4,
                      help="keep tags scoring above this (default 0.4; 0 keeps every tag)")
    tags.add_argument("--top-k", type=_count, default=0, help="keep at most K model tags (0: no cap)")
    tags.add_argument("--exclude", action="append", default=[], metavar="TAGS",
                      help="tags to drop, comma-separated, * wildcards; repeatable")
    tags.add_argument("--default-exclude", action=argparse.BooleanOptionalAction, default=default_exclude,
                      help="also drop tags that describe the source, not the picture (commission, ...)")
    tags.add_argument("--always-add", action="append", default=[], metavar="TAGS",
                      help="tags always written first, comma-separated; repeatable")
    tags.add_argument("--sort", choices=SORTS, default="confidence")
    tags.add_argument("--weighted", action="store_true", help="write (tag:0.87)")
    tags.add_argument("--identity-first", action="store_true",
                      help="list character, copyright and artist tags first")
    tags.add_argument("--keep-underscores", action="store_true", help="do not turn _ into spaces")
    tags.add_argument("--no-escape", action="store_true", help="do not escape brackets for A1111")


def options_from_args(args: argparse.Namespace) -> JoyTagOptions:
    """The :class:`JoyTagOptions` the command-line flags ask for."""
    exclude = [tag for text in args.exclude for tag in split_tag_list(text)]
    return JoyTagOptions(
        threshold=args.threshold,
        exclude=tuple(DEFAULT_EXCLUDE if args.default_exclude else ()) + tuple(exclude),
        always_add=tuple(tag for text in args.always_add for tag in split_tag_list(text)),
        top_k=args.top_k,
        replace_underscores=not args.keep_underscores,
        escape_brackets=not args.no_escape,
        sort=args.sort,
        weighted=args.weighted,
        identity_first=args.identity_first,
    )


def _fail(message: str, status: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status


def _load(args: argparse.Namespace):
    from lib_tagger.joytag.loader import JoyTagger

    tagger = JoyTagger.load(args.model, args.models_dir, args.device, precision=args.precision)
    if tagger.notice:
        print(f"note: {tagger.notice}", file=sys.stderr)
    return tagger


def run_interrogate(args: argparse.Namespace) -> int:
    """Tag each image; plain text (one line per image) or JSON with every kept tag's score."""
    import torch

    from lib_tagger.joytag.postprocess import display_name, format_tags, select_tags
    from lib_tagger.joytag.preprocess import preprocess_file

    try:
        options = options_from_args(args)
    except OptionsError as exc:
        return _fail(str(exc), 2)
    try:
        tagger = _load(args)
    except Exception as exc:  # missing files, corrupt checkpoint, no CUDA: one line, exit 1
        return _fail(str(exc), 1)
    results: dict[str, object] = {}
    loaded: list[tuple[str, object]] = []
    for image in args.images:
        try:
            loaded.append((image, preprocess_file(image, tagger.image_size)))
        except Exception as exc:
            results[image] = exc
    try:
        for start in range(0, len(loaded), args.batch_size):
            chunk = loaded[start : start + args.batch_size]
            for (image, _), scores in zip(chunk, tagger.predict(torch.stack([t for _, t in chunk]))):
                results[image] = select_tags(scores, options)
    except Exception as exc:
        return _fail(f"tagging failed: {type(exc).__name__}: {exc}", 1)
    finally:
        tagger.close()

    documents = []
    for image in args.images:
        result = results[image]
        if isinstance(result, Exception):
            print(f"error: {result}", file=sys.stderr)
            documents.append({"image": image, "error": str(result)})
        elif args.json:
            tags = {display_name(tag, options, escape=False): round(score, 6) for tag, score in result}
            documents.append({"image": image, "tags": tags})
        elif len(args.images) == 1:
            print(format_tags(result, options))
        else:
            print(f"{image}\t{format_tags(result, options)}")
    if args.json:
        print(json.dumps(documents, indent=2, ensure_ascii=False))
    return 1 if any(isinstance(result, Exception) for result in results.values()) else 0


def run_caption(args: argparse.Namespace) -> int:
    """Write a ``.txt`` caption beside every image of a folder; bad images are reported at the end."""
    from lib_tagger.joytag.caption import caption_folder

    try:
        options = options_from_args(args)
    except OptionsError as exc:
        return _fail(str(exc), 2)
    if not Path(args.folder).is_dir():
        return _fail(f"caption folder {args.folder} does not exist or is not a folder", 2)
    try:
        tagger = _load(args)
    except Exception as exc:
        return _fail(str(exc), 1)
    try:
        report = caption_folder(args.folder, options, tagger, recursive=args.recursive,
                                existing=args.existing, batch_size=args.batch_size)
    finally:
        tagger.close()
    print(report.summary(), file=sys.stderr if report.failed else sys.stdout)
    return 1 if report.failed else 0


def add_subcommands(subparsers) -> None:
    """Register ``interrogate`` and ``caption`` on ``subparsers`` (from ``add_subparsers()``)."""
    interrogate = subparsers.add_parser("interrogate", help="tag images with JoyTag",
                                        description="Tag images with JoyTag.")
    interrogate.add_argument("images", nargs="+", metavar="IMAGE")
    interrogate.add_argument("--json", action="store_true", help="print every kept tag with its score")
    _add_common(interrogate, default_exclude=False)
    interrogate.set_defaults(func=run_interrogate)

    caption = subparsers.add_parser("caption", help="write a .txt caption beside each image of a folder",
                                    description="Write a JoyTag caption beside each image of a folder.")
    caption.add_argument("folder", metavar="DIR")
    caption.add_argument("--recursive", action="store_true", help="include sub-folders")
    caption.add_argument("--existing", choices=("skip", "append", "overwrite"), default="skip",
                         help="what to do when a caption exists (default: skip, so reruns resume)")
    _add_common(caption, default_exclude=True)
    caption.set_defaults(func=run_caption)


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``interrogate`` or ``caption`` from ``argv``; returns the exit status."""
    parser = _OneLineParser(prog="python -m lib_tagger.joytag.cli")
    add_subcommands(parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
