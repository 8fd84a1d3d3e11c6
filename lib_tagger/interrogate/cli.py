"""The ``interrogate`` and ``caption`` commands of ``python -m lib_tagger``, for every interrogator.

:func:`add_subcommands` registers both on an argparse sub-parser set; each parser's ``func`` default
takes the parsed arguments and returns the exit status (0 fine, 1 a failure, 2 bad arguments). The tag
flags follow :class:`~lib_tagger.interrogate.postprocess.TagOptions`: :data:`OPTION_FLAGS` names the
flag of every field and the help text comes from the field's metadata.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from lib_tagger.devices import VISION_PRECISIONS
from lib_tagger.interrogate.postprocess import (
    DEFAULT_EXCLUDE,
    SORTS,
    OptionsError,
    TagOptions,
    parse_category_thresholds,
    split_tag_list,
)
from lib_tagger.interrogate.specs import DEFAULT_INTERROGATOR, INTERROGATORS

#: The command-line flag of each TagOptions field (tests check that every field has one).
OPTION_FLAGS = {
    "threshold": "--threshold",
    "category_thresholds": "--category-threshold",
    "mcut": "--mcut",
    "exclude": "--exclude",
    "always_add": "--always-add",
    "top_k": "--top-k",
    "rating_tag": "--rating-tag",
    "replace_underscores": "--keep-underscores",
    "escape_brackets": "--no-escape",
    "sort": "--sort",
    "weighted": "--weighted",
    "identity_first": "--identity-first",
}


def _fraction(text: str) -> float:
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


def _category_threshold(text: str) -> tuple[str, float]:
    try:
        return parse_category_thresholds(text)[0]
    except (OptionsError, IndexError) as exc:
        raise argparse.ArgumentTypeError(str(exc) or f"expected category=number, got {text!r}") from None


def _help(name: str) -> str:
    meta = {item.name: item.metadata for item in fields(TagOptions)}[name]
    return meta["help"] or meta["label"]


def _add_common(parser: argparse.ArgumentParser, default_exclude: bool) -> None:
    model = parser.add_argument_group("model")
    model.add_argument("--model", default=DEFAULT_INTERROGATOR,
                       help=f"{', '.join(INTERROGATORS)}; or a hub repo id or a folder with the model files "
                            f"(default {DEFAULT_INTERROGATOR})")
    model.add_argument("--models-dir", default=None, help="folder for downloaded models (default: HF cache)")
    model.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    model.add_argument("--precision", choices=VISION_PRECISIONS, default="fp32",
                       help="on a CPU: fp32, int8 (~1.3x faster at batch 1, scores within 0.03) "
                            "or bf16 (~2x where the CPU has native bf16)")
    model.add_argument("--batch-size", type=_positive, default=8, help="images per model call (default 8)")
    tags = parser.add_argument_group("tags")
    tags.add_argument("--threshold", type=_fraction, default=TagOptions.threshold, help=_help("threshold"))
    tags.add_argument("--character-threshold", type=_fraction, default=None,
                      help="the threshold of character tags (same as --category-threshold character=V)")
    tags.add_argument("--category-threshold", type=_category_threshold, action="append", default=[],
                      metavar="CATEGORY=V", help=_help("category_thresholds") + "; repeatable")
    tags.add_argument("--mcut", default="", metavar="CATEGORIES", help=_help("mcut") + "; or all")
    tags.add_argument("--top-k", type=_count, default=0, help=_help("top_k"))
    tags.add_argument("--exclude", action="append", default=[], metavar="TAGS",
                      help="tags to drop, comma-separated, * wildcards; repeatable")
    tags.add_argument("--default-exclude", action=argparse.BooleanOptionalAction, default=default_exclude,
                      help="also drop tags that describe the source, not the picture (commission, ...)")
    tags.add_argument("--always-add", action="append", default=[], metavar="TAGS",
                      help="tags always written first, comma-separated; repeatable")
    tags.add_argument("--rating-tag", action="store_true", help=_help("rating_tag"))
    tags.add_argument("--sort", choices=SORTS, default="confidence")
    tags.add_argument("--weighted", action="store_true", help="write (tag:0.87)")
    tags.add_argument("--identity-first", action="store_true", help=_help("identity_first").lower())
    tags.add_argument("--keep-underscores", action="store_true", help="do not turn _ into spaces")
    tags.add_argument("--no-escape", action="store_true", help="do not escape brackets for A1111")


def options_from_args(args: argparse.Namespace) -> TagOptions:
    """The :class:`TagOptions` the command-line flags ask for."""
    exclude = [tag for text in args.exclude for tag in split_tag_list(text)]
    thresholds = dict(args.category_threshold)
    if args.character_threshold is not None:
        thresholds["character"] = args.character_threshold
    return TagOptions(
        threshold=args.threshold,
        category_thresholds=thresholds,
        mcut=args.mcut,
        exclude=tuple(DEFAULT_EXCLUDE if args.default_exclude else ()) + tuple(exclude),
        always_add=tuple(tag for text in args.always_add for tag in split_tag_list(text)),
        top_k=args.top_k,
        rating_tag=args.rating_tag,
        replace_underscores=not args.keep_underscores,
        escape_brackets=not args.no_escape,
        sort=args.sort,
        weighted=args.weighted,
        identity_first=args.identity_first,
    )


#: Exit status after Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130


def _fail(message: str, status: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status


def _load(args: argparse.Namespace):
    from lib_tagger.interrogate.loading import load_interrogator

    return load_interrogator(args.model, args.models_dir, args.device, precision=args.precision)


def _error_line(exc: BaseException) -> str:
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


def run_interrogate(args: argparse.Namespace) -> int:
    """Tag each image; plain text (one line per image) or JSON with every kept tag's score and the ratings."""
    import torch

    from lib_tagger.interrogate.images import preprocess_file
    from lib_tagger.interrogate.postprocess import describe, display_name

    try:
        options = options_from_args(args)
    except OptionsError as exc:
        return _fail(str(exc), 2)
    try:
        tagger = _load(args)
    except Exception as exc:  # unknown model, missing files, corrupt checkpoint, no CUDA: one line, exit 1
        return _fail(_error_line(exc), 1)
    results: dict[str, object] = {}
    loaded: list[tuple[str, object]] = []
    for image in args.images:
        try:
            loaded.append((image, preprocess_file(image, tagger.preprocess)))
        except Exception as exc:
            results[image] = exc
    try:
        for start in range(0, len(loaded), args.batch_size):
            chunk = loaded[start : start + args.batch_size]
            for (image, _), prediction in zip(chunk, tagger.predict(torch.stack([t for _, t in chunk]))):
                results[image] = describe(prediction, options)
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
            tags = {display_name(tag, options, escape=False): round(score, 6) for tag, score in result.tags}
            document = {"image": image, "model": tagger.name, "tags": tags}
            if result.ratings:
                document.update(rating=result.rating, ratings={k: round(v, 6) for k, v in result.ratings.items()})
            documents.append(document)
        elif len(args.images) == 1:
            print(result.caption)
        else:
            print(f"{image}\t{result.caption}")
    if args.json:
        print(json.dumps(documents, indent=2, ensure_ascii=False))
    return 1 if any(isinstance(result, Exception) for result in results.values()) else 0


def run_caption(args: argparse.Namespace) -> int:
    """Caption every image of a folder (``.txt`` beside each, or one JSONL / CSV); bad images listed at the end."""
    from lib_tagger.caption.run import caption_folder
    from lib_tagger.caption.sink import CaptionInterrupted

    try:
        options = options_from_args(args)
    except OptionsError as exc:
        return _fail(str(exc), 2)
    if args.format != "txt" and args.existing == "append":
        return _fail("--existing append merges .txt captions; a score file takes skip or overwrite", 2)
    if args.engine == "ray":
        return _caption_on_ray(args, options)
    if args.address or args.workers or args.cpus_per_worker:
        return _fail("--address, --workers and --cpus-per-worker take --engine ray", 2)
    if args.format == "parquet":
        return _fail("--format parquet is written by --engine ray", 2)
    if not Path(args.folder).is_dir():
        return _fail(f"caption folder {args.folder} does not exist or is not a folder", 2)
    try:
        tagger = _load(args)
    except Exception as exc:
        return _fail(_error_line(exc), 1)
    try:
        report = caption_folder(args.folder, options, tagger, recursive=args.recursive, existing=args.existing,
                                batch_size=args.batch_size, output_format=args.format, output=args.output)
    except ValueError as exc:  # e.g. a score file written by another model
        return _fail(str(exc), 1)
    except CaptionInterrupted as stop:
        done = stop.report
        resume = "; run again to resume" if args.existing == "skip" else ""
        print(f"interrupted: {len(done.written)} of {done.total} captioned, {len(done.failed)} failed, "
              f"{len(done.skipped)} skipped (caption exists){resume}", file=sys.stderr)
        return INTERRUPTED
    finally:
        tagger.close()
    print(report.summary(), file=sys.stderr if report.failed else sys.stdout)
    return 1 if report.failed else 0


def _caption_on_ray(args: argparse.Namespace, options: TagOptions) -> int:
    """``caption --engine ray``: the same captions from a Ray cluster (Ray is an optional requirement)."""
    try:
        import ray.data  # noqa: F401
    except ImportError as exc:
        return _fail(f"--engine ray needs Ray Data: pip install -r requirements/ray.txt ({exc})", 1)
    from lib_tagger.caption.ray_run import RayJobError, caption_with_ray
    from lib_tagger.caption.sources import SourceError
    from lib_tagger.interrogate.loading import InterrogatorSource

    source = InterrogatorSource(args.model, args.models_dir, args.device, precision=args.precision)
    try:
        report = caption_with_ray(args.folder, options, source, recursive=args.recursive, existing=args.existing,
                                  batch_size=args.batch_size, output_format=args.format, output=args.output,
                                  address=args.address, workers=args.workers, cpus_per_worker=args.cpus_per_worker)
    except SourceError as exc:
        return _fail(str(exc), 2)
    except RayJobError as exc:
        print(exc.report.summary(), file=sys.stderr)
        return _fail(f"{exc}; a rerun resumes", 1)
    except Exception as exc:  # unknown model, missing files, a score file of another model, no GPU
        return _fail(_error_line(exc), 1)
    print(report.summary(), file=sys.stderr if report.failed else sys.stdout)
    return 1 if report.failed else 0


def add_subcommands(subparsers) -> None:
    """Register ``interrogate`` and ``caption`` on ``subparsers`` (from ``add_subparsers()``)."""
    interrogate = subparsers.add_parser("interrogate", help="tag images with an interrogator (JoyTag, WD v3)",
                                        description="Tag images with JoyTag or a WD v3 tagger.")
    interrogate.add_argument("images", nargs="+", metavar="IMAGE")
    interrogate.add_argument("--json", action="store_true",
                             help="print every kept tag with its score (and the ratings)")
    _add_common(interrogate, default_exclude=False)
    interrogate.set_defaults(func=run_interrogate)

    caption = subparsers.add_parser("caption", help="caption every image of a folder",
                                    description="Write a caption beside each image of a folder, or one "
                                                "JSONL / CSV file with every score.")
    caption.add_argument("folder", metavar="SRC",
                         help="the folder of images; with --engine ray also a file listing images or a glob")
    caption.add_argument("--recursive", action="store_true", help="include sub-folders")
    caption.add_argument("--existing", choices=("skip", "append", "overwrite"), default="skip",
                         help="what to do when a caption exists (default: skip, so reruns resume)")
    caption.add_argument("--format", choices=("txt", "jsonl", "csv", "parquet"), default="txt",
                         help="txt: a caption beside each image (default); jsonl / csv: one file with every "
                              "tag's and rating's score, for filtering later without the model; parquet "
                              "(--engine ray): a folder of Parquet part files with the same records")
    caption.add_argument("--output", default=None, metavar="FILE",
                         help="the JSONL / CSV file or Parquet folder (default: SRC/captions.<format>; for a "
                              "list or a glob, in the folder it starts from)")
    _add_common(caption, default_exclude=True)
    engine = caption.add_argument_group("engine")
    engine.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: this process (default); ray: Ray Data stages on this machine or a cluster "
                             "(pip install -r requirements/ray.txt)")
    engine.add_argument("--address", default=None,
                        help="ray: the cluster to join (auto, or host:port of `ray start --head`); "
                             "default: start one on this machine")
    engine.add_argument("--workers", type=_positive, default=None,
                        help="ray: model actors (default: one per GPU of the cluster, else 1)")
    engine.add_argument("--cpus-per-worker", type=_positive, default=None,
                        help="ray: CPU cores (torch threads) of each CPU model actor (default: the cluster's "
                             "CPUs shared out, one per actor left for decoding)")
    caption.set_defaults(func=run_caption)


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``interrogate`` or ``caption`` from ``argv``; returns the exit status."""
    parser = _OneLineParser(prog="python -m lib_tagger.interrogate.cli")
    add_subcommands(parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:  # e.g. while the model loads: nothing was written
        print("interrupted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
