"""The decoder's matrix products: ``F.linear``, or MKL's packed GEMM on x86 CPUs in float32.

Decoding multiplies the same weights by a few rows (one per prompt of a batch) hundreds of times.
MKL can store a weight once in its own blocked layout (``cblas_sgemm_pack``) and multiply by it
repeatedly without re-laying it out; on a CPU that makes a product with 2-16 rows about 2x faster
than ``F.linear``, but one row (batch 1, bound by reading the weights) about 5-10% slower. torch
exposes this as ``torch.ops.mkl._mkl_linear`` (the kernel its own compiler uses for CPU linears).
The packed copy replaces the plain weight, so no memory is added. Where the op is missing (other
builds, other devices) or fails a one-time self-check against ``F.linear``, weights stay plain.

For one row on a CPU, a weight with at least as many outputs as inputs is read faster stored
transposed (``x @ W^T`` as ``mm(x, W_t)``, a row-major product that streams ``W_t``): the head and
the fused QKV / gate-up projections of these models gain 10-30%.
"""

from __future__ import annotations

#: The row count MKL is told to pack for: the layout it picks suits the 2-16 rows of a batched decode step.
PACK_ROWS = 8
_pack_ok: bool | None = None  # the self-check's verdict, once per process


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
