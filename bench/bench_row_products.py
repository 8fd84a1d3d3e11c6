"""How fast each float32 matrix-product kernel torch offers here reads weights, by row count.

Decoding is bound by reading the weights: a product of ``rows`` prompts by a weight takes at least
(weight bytes / read bandwidth). This prints the read rate (weight bytes / seconds) of every kernel
the decoder could use, for the weight shapes of dart-v2 (the fused gate/up and the down projection
of one MLP or expert, and the head), with the weights cycled from memory (several hundred MB, far
over the caches), as a Markdown table. It explains the batch-8 figures of
``bench_torch_decoder.py``: batch 1 uses the best one-row kernel, a batch the best small-row one.

Kernels: ``F.linear`` on the plain weight; ``mm`` on the transposed weight; MKL's packed GEMM
(``torch.ops.mkl._mkl_linear``, what :class:`~lib_tagger.generate.linear.Linear` uses once packed);
oneDNN's packed linear (``torch.ops.mkldnn._linear_pointwise``) where this torch has it.

``python bench/bench_row_products.py [--threads N] [--megabytes N]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_torch_decoder import memory_bandwidth  # noqa: E402

SHAPES = {"gate/up 6144x768": (6144, 768), "down 768x3072": (768, 3072), "head 30649x768": (30649, 768)}
ROWS = (1, 2, 4, 8)


def kernels(torch, weights: list) -> dict:
    """Name -> (prepared weights, product(x, prepared)) for every kernel this build can run."""
    import torch.nn.functional as F

    from lib_tagger.generate.linear import Linear, packing_available

    found = {
        "F.linear (plain)": (weights, lambda x, w: F.linear(x, w)),
        "mm (transposed)": ([w.t().contiguous() for w in weights], lambda x, w: torch.mm(x, w)),
    }
    if packing_available(torch.device("cpu"), torch.float32):
        packed = []
        for w in weights:
            layer = Linear(w.clone())
            layer.pack()
            packed.append(layer)
        found["MKL packed"] = (packed, lambda x, layer: layer(x))
    onednn = getattr(torch.ops.mkldnn, "_linear_pointwise", None)
    if onednn is not None and torch.backends.mkldnn.is_available():
        try:
            prepared = [torch.ops.mkldnn._reorder_linear_weight(w, max(ROWS)) for w in weights]
            onednn(torch.zeros(1, weights[0].shape[1]), prepared[0], None, "none", [], "")
            found["oneDNN packed"] = (prepared, lambda x, w: onednn(x, w, None, "none", [], ""))
        except (AttributeError, RuntimeError):
            pass
    return found


def read_rate(prepared: list, product, x, nbytes: int, repeats: int) -> float:
    """Weight bytes per second of the best of ``repeats`` passes over all of ``prepared``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for w in prepared:
            product(x, w)
        best = min(best, time.perf_counter() - start)
    return nbytes / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch default)")
    parser.add_argument("--megabytes", type=int, default=400, help="weights cycled per shape")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    bandwidth = memory_bandwidth(torch)
    lines = []
    for label, (out_features, in_features) in SHAPES.items():
        size = out_features * in_features * 4
        count = max(2, args.megabytes * 2**20 // size)
        generator = torch.Generator().manual_seed(0)
        weights = [torch.randn(out_features, in_features, generator=generator) for _ in range(count)]
        for name, (prepared, product) in kernels(torch, weights).items():
            rates = []
            for rows in ROWS:
                x = torch.randn(rows, in_features, generator=generator)
                rates.append(read_rate(prepared, product, x, size * count, args.repeats))
            lines.append(f"| {label} | {name} | " + " | ".join(f"{r / 1e9:.1f}" for r in rates) + " |")
        del weights
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, float32, "
          f"copy bandwidth {bandwidth / 1e9:.1f} GB/s (read + write); figures: GB/s of weights read\n")
    print("| weight | kernel | " + " | ".join(f"{r} row{'s' if r > 1 else ''}" for r in ROWS) + " |")
    print("|---|---|" + "---|" * len(ROWS))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
