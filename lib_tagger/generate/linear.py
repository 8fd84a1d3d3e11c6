"""The decoder's matrix products, and the form each weight is kept in: :func:`make_linear` chooses.

Forms: plain (``F.linear``), transposed (one-row products on a CPU), MKL-packed (batches on x86
CPUs in float32) and 8-bit (:class:`Int8Linear`, on CPUs with torch's x86 quantized engine).

Decoding multiplies the same weights by a few rows (one per prompt of a batch) hundreds of times.
MKL can store a weight once in its own blocked layout (``cblas_sgemm_pack``) and multiply by it
repeatedly without re-laying it out; on a CPU that makes a product with 2-16 rows about 2x faster
than ``F.linear``, but one row (batch 1, bound by reading the weights) about 5-10% slower. torch
exposes this as ``torch.ops.mkl._mkl_linear`` (the kernel its own compiler uses for CPU linears).
The packed copy replaces the plain weight, one weight at a time. Where the op is missing (other
builds, other devices) or fails a one-time self-check against ``F.linear``, weights stay plain.

For one row on a CPU, a weight with at least as many outputs as inputs is read faster stored
transposed (``x @ W^T`` as ``mm(x, W_t)``, a row-major product that streams ``W_t``): the head and
the fused QKV / gate-up projections of these models gain 10-30%.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import warnings

#: The row count MKL is told to pack for: the layout it picks suits the 2-16 rows of a batched decode step.
PACK_ROWS = 8
_pack_ok: bool | None = None  # the self-check's verdict, once per process
_int8_problem: str | None = None  # why 8-bit products cannot run here ("" when they can), once per process
#: Up to this many rows (a decode step), :class:`Int8Linear` keeps its input buffer between calls.
_KEPT_INPUT_ROWS = 64


def packing_available(device, dtype) -> bool:
    """True when weights on ``device`` in ``dtype`` can use MKL's packed GEMM here."""
    import torch

    global _pack_ok
    if getattr(device, "type", str(device)) != "cpu" or dtype != torch.float32:
        return False
    if _pack_ok is None:
        _pack_ok = _self_check(torch)
    return _pack_ok


def _self_check(torch) -> bool:
    """Packed products equal ``F.linear`` for 1, 3 and 8 rows (guards against a build whose op differs)."""
    ops = getattr(torch.ops, "mkl", None)
    if ops is None or not torch.backends.mkl.is_available():
        return False
    try:
        generator = torch.Generator().manual_seed(0)
        weight = torch.randn(40, 72, generator=generator)
        bias = torch.randn(40, generator=generator)
        layer = Linear(weight, bias)
        layer.pack()
        for rows in (1, 3, PACK_ROWS):
            x = torch.randn(rows, 72, generator=generator)
            if not torch.allclose(layer(x), torch.nn.functional.linear(x, weight, bias), atol=1e-4, rtol=1e-4):
                return False
    except (AttributeError, RuntimeError):  # op absent from this build, or refuses these tensors
        return False
    return True


def wants_transposed(out_features: int, in_features: int, device) -> bool:
    """True where a plain weight is faster stored transposed (see the module notes)."""
    return getattr(device, "type", str(device)) == "cpu" and out_features >= in_features


class Linear:
    """``y = x @ W.T + bias`` for ``x`` of any leading shape, with ``W`` plain or MKL-packed.

    ``weight`` is ``W`` (``[out, in]``), or ``W.T`` (``[in, out]``, contiguous) with ``transposed``.
    """

    __slots__ = ("_stand_in", "bias", "in_features", "out_features", "packed", "transposed", "weight")

    def __init__(self, weight, bias=None, *, transposed: bool = False) -> None:
        self.in_features, self.out_features = weight.shape if transposed else weight.shape[::-1]
        self.weight, self.bias, self.transposed = weight, bias, transposed
        self.packed = self._stand_in = None

    def pack(self) -> None:
        """Re-lay the weight out for MKL's packed GEMM (the caller checked :func:`packing_available`)."""
        import torch

        if self.packed is not None:
            return
        plain = (self.weight.t() if self.transposed else self.weight).contiguous()
        try:
            self.packed = torch.ops.mkl._mkl_reorder_linear_weight(plain, PACK_ROWS)
        except RuntimeError:  # older torch (A1111's 2.1) takes the weight as an MKL-DNN tensor
            self.packed = torch.ops.mkl._mkl_reorder_linear_weight(plain.to_mkldnn(), PACK_ROWS)
        # Given the input's own row count, the op reads only the sizes and dtype of the plain
        # weight, which every call below does: one expanded element stands in for it.
        self._stand_in = plain.new_zeros(1).expand(self.out_features, self.in_features)
        self.weight = None
        self.transposed = False

    def __call__(self, x):
        import torch
        import torch.nn.functional as F

        if self.packed is None and not self.transposed:
            return F.linear(x, self.weight, self.bias)
        rows = x.reshape(-1, self.in_features)
        if self.transposed:
            out = torch.mm(rows, self.weight) if self.bias is None else torch.addmm(self.bias, rows, self.weight)
        else:
            if not rows.is_contiguous():
                rows = rows.contiguous()
            out = torch.ops.mkl._mkl_linear(rows, self.packed, self._stand_in, self.bias, rows.shape[0])
        return out.view(*x.shape[:-1], self.out_features)

    @property
    def nbytes(self) -> int:
        """Bytes of the weight (and bias) in their plain layout."""
        size = 4 if self.weight is None else self.weight.element_size()
        total = self.out_features * self.in_features * size
        return total + (0 if self.bias is None else self.bias.numel() * self.bias.element_size())


def int8_problem(device) -> str | None:
    """None when :class:`Int8Linear` runs on ``device`` here, else why not (one line, for the user)."""
    import torch

    global _int8_problem
    if getattr(device, "type", str(device)) != "cpu":
        return f"8-bit weights run on the CPU only, not on {device}"
    if _int8_problem is None:
        _int8_problem = _int8_self_check(torch)
    return _int8_problem or None


def _int8_engine(torch) -> str | None:
    """The quantized engine to use: torch's x86 one (fbgemm), or None where the build has none."""
    engines = getattr(torch.backends.quantized, "supported_engines", [])
    return next((name for name in ("x86", "fbgemm") if name in engines), None)


def _int8_self_check(torch) -> str:
    """"" when 8-bit products are within 3% of ``F.linear`` on a small case, else the reason."""
    engine = _int8_engine(torch)
    if engine is None:
        return "this torch build has no x86 quantized engine (fbgemm) for 8-bit weights"
    try:
        generator = torch.Generator().manual_seed(0)
        weight = torch.randn(40, 72, generator=generator)
        bias = torch.randn(40, generator=generator)
        layer = Int8Linear(weight, bias)
        for rows in (1, 3, 8):
            x = torch.randn(rows, 72, generator=generator)
            expected = torch.nn.functional.linear(x, weight, bias)
            if (layer(x) - expected).norm() > 0.03 * expected.norm():
                return "torch's 8-bit products disagree with float32 on this CPU"
    except (AttributeError, RuntimeError, NotImplementedError) as exc:
        return f"this torch build cannot run 8-bit products ({type(exc).__name__}: {str(exc)[:80]})"
    return ""


@contextlib.contextmanager
def _quiet_quantization():
    """torch 2.13 warns that its quantized tensor types are deprecated; we make one per weight at load."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*quantiz.*deprecated", category=UserWarning)
        yield


@functools.cache
def _has_vnni() -> bool:
    """True on x86 CPUs with VNNI (8-bit dot products that add in 32 bits, without saturation)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            flags = next((line for line in info if line.startswith("flags")), "")
    except OSError:
        return False
    return " avx512_vnni" in flags or " avx_vnni" in flags


def _input_rows(flat, count: int, width: int) -> tuple:
    """``flat``'s first ``count * (width + 2)`` elements as (buffer, its first ``width`` columns): ``count``
    rows of ``width`` inputs and the two fixed ones, -1 and +1, that set the quantization range."""
    rows = flat[: count * (width + 2)].view(count, width + 2)
    rows[:, width], rows[:, width + 1] = -1.0, 1.0
    return rows, rows[:, :width]


class Scratch:
    """One input buffer that the 8-bit products of a model share for inputs of many rows (images).

    A fresh buffer the size of a batch of images costs its page faults at every call; kept per
    product it would hold one such buffer per layer. The buffer grows to the largest input seen and
    goes with the model. A call that finds it in use (another thread) takes a buffer of its own.
    """

    def __init__(self) -> None:
        self._flat = None
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def rows(self, count: int, width: int):
        """(buffer, its input columns) for ``count`` rows of ``width`` (see :func:`_input_rows`)."""
        import torch

        need = count * (width + 2)
        if not self._lock.acquire(blocking=False):
            yield _input_rows(torch.empty(need), count, width)
            return
        try:
            if self._flat is None or self._flat.numel() < need:
                self._flat = None  # the old buffer goes before the larger one comes
                self._flat = torch.empty(need)
            yield _input_rows(self._flat, count, width)
        finally:
            self._lock.release()


class Int8Linear:
    """``y = x @ W.T + bias`` with ``W`` in 8 bits: a scale per output row, products in int8 (fbgemm).

    ``quantized::linear_dynamic`` (what ``torch.ao.quantization.quantize_dynamic`` runs) quantizes
    its whole input with one scale, so a row's result would depend on the other rows of a batch.
    Each row is therefore divided by its own largest magnitude first, and every row carries two
    more inputs, -1 and +1, whose weights are zero: the input range is always [-1, 1], every row is
    quantized alone (a scale per row), the two extra inputs add exactly nothing, and a batch row
    gets exactly what the same row gets alone. The weights take a quarter of the bytes, which is
    what one-row products wait for, and the same form serves any row count, so batches need no
    second copy.
    """

    __slots__ = ("_inputs", "bias", "in_features", "out_features", "packed", "reduce_range", "scratch")

    def __init__(self, weight, bias=None, scratch: Scratch | None = None) -> None:
        import torch

        self.out_features, self.in_features = weight.shape
        self.bias = None if bias is None else bias.detach().float()
        weight = torch.cat([weight.detach().float(), weight.new_zeros(self.out_features, 2, dtype=torch.float32)], 1)
        scales = (weight.abs().amax(dim=1) / 127.0).clamp_(min=1e-12).double()
        zeros = torch.zeros(self.out_features, dtype=torch.long)
        engine = _int8_engine(torch)
        previous = torch.backends.quantized.engine
        with _quiet_quantization():
            try:
                torch.backends.quantized.engine = engine
                q = torch.quantize_per_channel(weight, scales, zeros, 0, torch.qint8)
                self.packed = torch.ops.quantized.linear_prepack(q, None)
            finally:
                torch.backends.quantized.engine = previous
        # Row count -> (input buffer, its input columns) for decode steps (callers hold a lock: one
        # call at a time); inputs of more rows go through ``scratch``, shared with the model's other products.
        self._inputs: dict[int, tuple] = {}
        self.scratch = scratch
        # Without VNNI, x86 adds pairs of u8*s8 products in 16 bits: 7-bit inputs cannot overflow.
        self.reduce_range = not _has_vnni()

    def __call__(self, x):
        import torch

        rows = x.reshape(-1, self.in_features)
        if rows.dtype != torch.float32:
            rows = rows.float()
        count = rows.shape[0]
        # Each row's largest magnitude, the same value either way.
        if count <= _KEPT_INPUT_ROWS:
            # A decode step: two ops, where each op's call costs more than its work; the step's row count
            # repeats, so its input buffer is kept.
            size = rows.abs().amax(dim=1, keepdim=True).clamp_(min=1e-30)
            kept = self._inputs.get(count)
            if kept is None:
                kept = self._inputs[count] = _input_rows(torch.empty(count * (self.in_features + 2)), count,
                                                         self.in_features)
            out = self._product(rows, size, kept)
        else:
            # Many rows (images, prompts): no temporary the size of ``rows`` (amax and amin are vectorised;
            # aminmax and an inf-norm run 10-15x slower over an image's rows), and the model's shared
            # buffer, or one of its own without one.
            size = torch.maximum(rows.amax(dim=1, keepdim=True), rows.amin(dim=1, keepdim=True).neg_())
            size.clamp_(min=1e-30)
            with (self.scratch or Scratch()).rows(count, self.in_features) as kept:
                out = self._product(rows, size, kept)
        # The result in place: a fresh tensor of an image's size costs its page faults again.
        if self.bias is None:
            out.mul_(size)
        else:
            torch.addcmul(self.bias, out, size, out=out)
        return out.view(*x.shape[:-1], self.out_features)

    def _product(self, rows, size, kept):
        """The 8-bit product of ``rows / size``, written into ``kept``'s input columns."""
        import torch

        scaled, inputs = kept
        torch.div(rows, size, out=inputs)
        # The op's overload itself: through the overload packet, torch 2.13 spends ~20 us a call in Python.
        return torch.ops.quantized.linear_dynamic.default(scaled, self.packed, self.reduce_range)

    @property
    def nbytes(self) -> int:
        """Bytes of the 8-bit weight (with its two zero columns), its row scales and the bias."""
        total = self.out_features * (self.in_features + 2 + 8)
        return total + (0 if self.bias is None else self.bias.numel() * 4)


def make_linear(parts: list, bias=None, *, device, dtype, int8: bool = False, pack: bool = False,
                scratch: Scratch | None = None):
    """The product for weight ``parts`` (``[out_i, in]`` each, fused along the outputs) in the form
    that suits ``device``: 8-bit with ``int8`` (the caller checked :func:`int8_problem`), else
    transposed where :func:`wants_transposed`, else plain; MKL-packed at once with ``pack``. 8-bit
    products of one model share ``scratch`` for inputs of many rows."""
    import torch

    if int8:
        weight = torch.cat(parts) if len(parts) > 1 else parts[0]
        return Int8Linear(weight, bias, scratch)
    parts = [p.to(dtype=dtype) for p in parts]
    transposed = wants_transposed(sum(p.shape[0] for p in parts), parts[0].shape[1], device)
    # Built in one allocation, owned (a view into a memory-mapped file would keep its pages in RSS).
    if transposed:
        weight = torch.cat([p.t() for p in parts], dim=1) if len(parts) > 1 else parts[0].t().contiguous()
    else:
        weight = torch.cat(parts) if len(parts) > 1 else parts[0].clone()
    del parts
    lin = Linear(weight.to(device), None if bias is None else bias.to(device=device, dtype=dtype),
                 transposed=transposed)
    if pack:
        lin.pack()
    return lin
