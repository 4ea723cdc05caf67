"""Basis convolution: a ``Conv2d`` that trains only ``rank < C_out`` filters.

Implements the layer of Alekseev et al., *Layer-Specific Optimization: Sensitivity Based Convolution Layers
Basis Search* (arXiv 2408.06024). A convolution with weight ``W`` of shape ``(C_out, C_in, k, k)`` is replaced by

    Y' = conv(X, W')            W' : (rank, C_in, k, k)        (the basis convolutions)
    Y  = A Y'                   A  : (C_out, rank)             (a 1x1 conv, the coefficient matrix)

so the folded weight is ``W = A W'`` (the filters of the original layer are linear combinations of ``rank``
basis filters). With ``coeff="reduced"`` the paper's smaller coefficient matrix is used: the ``rank`` basis
outputs are passed through as identity and only the other ``C_out - rank`` outputs are combinations,

    A = P [I_rank ; C]          C : (C_out - rank, rank)

where ``P`` is the permutation that puts every output channel back in its original position, which keeps the
module a drop-in replacement for the convolution it came from.

MACs per output pixel: dense ``C_out*C_in*k*k``; basis ``rank*C_in*k*k + (C_out-rank)*rank`` (reduced) or
``rank*C_in*k*k + C_out*rank`` (full). Parameters follow the same formulas.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from basisconv.core.checks import check_choice
from basisconv.core.conv_guard import conv2d

COEFF_CHOICES = ("reduced", "full")
INIT_CHOICES = ("qr", "svd", "random")


def _pair(v, name: str) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    v = tuple(v)
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a pair, got {v!r}")
    return (int(v[0]), int(v[1]))


def pivoted_qr_columns(m: torch.Tensor, r: int) -> torch.Tensor:
    """Indices of ``r`` columns of ``m`` chosen by column-pivoted QR (Businger-Golub).

    Greedy: at each step take the column with the largest norm after projecting out the columns already taken.
    These are the most linearly independent columns, i.e. the best-conditioned basis among actual columns.
    Runs in float64 because the residual norms of nearly dependent filters underflow float32 noise.
    """
    a = m.detach().to(torch.float64).clone()  # (D, n)
    n = a.shape[1]
    if not 1 <= r <= n:
        raise ValueError(f"rank must be in [1, {n}], got {r}")
    norms = (a * a).sum(0)
    chosen: list[int] = []
    taken = torch.zeros(n, dtype=torch.bool)
    for _ in range(r):
        scores = norms.masked_fill(taken, -1.0)
        j = int(torch.argmax(scores))
        chosen.append(j)
        taken[j] = True
        q = a[:, j]
        qn = q.norm()
        if qn > 0:
            q = q / qn
            a = a - q[:, None] * (q @ a)[None, :]  # project out the new direction from every column
        norms = (a * a).sum(0)
    return torch.tensor(chosen, dtype=torch.long)


class BasisConv2d(nn.Module):
    """``rank`` basis convolutions followed by a coefficient matrix (see the module docstring).

    Parameters ``weight`` ``(rank, C_in, kh, kw)`` and ``coefficients`` (``(C_out - rank, rank)`` reduced or
    ``(C_out, rank)`` full); buffer ``basis_idx`` ``(rank,)`` holds the output positions of the basis channels
    (reduced only; ``other_idx`` the rest) so a QR-chosen basis keeps the original channel order. ``impl`` picks
    how the reduced mix is executed: a name in ``EXECUTION_FORMS`` or ``"auto"`` (see ``execution_form``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 bias: bool = False, *, rank: int, coeff: str = "reduced", groups: int = 1, impl: str = "auto"):
        super().__init__()
        if groups != 1:
            raise ValueError(f"BasisConv2d supports groups=1 only, got groups={groups}: a grouped conv's filters "
                             "do not share an input space, so they have no common basis")
        check_choice(coeff, COEFF_CHOICES, "coeff")
        # read at call time (not the IMPL_CHOICES snapshot), so a form registered at runtime is accepted too
        check_choice(impl, ("auto", *EXECUTION_FORMS), "impl")
        self.impl = impl
        if isinstance(padding, str):
            raise ValueError(f"string padding {padding!r} is not supported; pass explicit integers")
        if not (isinstance(rank, int) and 1 <= rank <= out_channels):
            raise ValueError(f"rank must be an int in [1, out_channels={out_channels}], got {rank!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride, self.padding = _pair(stride, "stride"), _pair(padding, "padding")
        self.dilation = _pair(dilation, "dilation")
        self.rank, self.coeff = int(rank), coeff  # coeff: the mode string, as passed
        self.weight = nn.Parameter(torch.empty(rank, in_channels, *self.kernel_size))
        n_mixed = out_channels - rank if coeff == "reduced" else out_channels
        self.coefficients = nn.Parameter(torch.empty(n_mixed, rank))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        # basis_idx/other_idx: where basis and combined channels sit in the output (reduced form only).
        self.register_buffer("basis_idx", torch.arange(rank))
        self.register_buffer("other_idx", torch.arange(rank, out_channels))
        self.register_buffer("inv_perm", torch.arange(out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Fresh init for training from scratch: conv-default basis, coefficients with unit output gain.

        A combined channel sums ``rank`` basis outputs; U(-sqrt(3/rank), sqrt(3/rank)) gives it variance
        ``rank * (1/rank) * var(Y')``, the same as a basis channel, so BN downstream sees matched scales.
        """
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's default
        bound = math.sqrt(3.0 / self.rank)
        nn.init.uniform_(self.coefficients, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        self._set_basis_positions(torch.arange(self.rank, device=self.basis_idx.device))

    def _set_basis_positions(self, basis_idx: torch.Tensor) -> None:
        dev = self.basis_idx.device
        basis_idx = basis_idx.to(dev, torch.long)
        mask = torch.ones(self.out_channels, dtype=torch.bool, device=dev)
        mask[basis_idx] = False
        other_idx = torch.arange(self.out_channels, device=dev)[mask]
        perm = torch.cat([basis_idx, other_idx])  # position in cat([Y', Z]) -> original channel
        self.basis_idx, self.other_idx = basis_idx, other_idx
        self.inv_perm = torch.argsort(perm)
        self._refresh_order()

    def full_coeff(self) -> torch.Tensor:
        """The ``(C_out, rank)`` matrix A with ``W = A W'`` (identity rows at ``basis_idx`` when reduced)."""
        if self.coeff == "full":
            return self.coefficients
        eye = torch.eye(self.rank, dtype=self.coefficients.dtype, device=self.coefficients.device)
        return torch.cat([eye, self.coefficients], 0)[self.inv_perm]

    @property
    def execution_form(self) -> str:
        """The ``EXECUTION_FORMS`` entry the reduced forward runs: ``impl``, with ``"auto"`` resolved.

        ``"auto"`` is a rule, not a form: ``"dense_mix"`` when the basis order is not the identity (QR/SVD inits,
        where the gather of ``"cat"`` would copy the whole output and drop channels_last), else ``"cat"`` (the
        paper's MAC count, nothing to gather). Read on every forward, so setting ``layer.impl`` (as
        ``bench.time_basis_layers`` does) takes effect at once.
        """
        if self.impl == "auto":
            return "cat" if self._order_identity else "dense_mix"
        return self.impl

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # through the oneDNN #6035 guard: a 1x1 stride-2 basis conv with few input channels (conv_guard)
        y = conv2d(x, self.weight, None, self.stride, self.padding, self.dilation)  # (N, rank, H, W)
        if self.coeff == "full":
            # the full (C_out, rank) matrix has no identity block, so there is one form: a 1x1 conv
            out = F.conv2d(y, self.coefficients[:, :, None, None])  # (N, C_out, H, W)
        else:
            out = EXECUTION_FORMS[self.execution_form](self, y)  # (N, C_out, H, W)
        if self.bias is not None:
            out = out + self.bias[None, :, None, None]
        return out

    def _refresh_order(self) -> None:
        # A Python flag, not a tensor comparison: checking inv_perm on every forward would sync a GPU each step.
        self._order_identity = bool(torch.equal(self.inv_perm.cpu(), torch.arange(self.out_channels)))

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._refresh_order()  # loaded basis positions (e.g. from a QR-initialised checkpoint)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, *, ratio: float | None = None, rank: int | None = None,
                  coeff: str = "reduced", init: str = "qr", impl: str = "auto") -> "BasisConv2d":
        """A basis layer approximating ``conv`` (see ``init``); exactly one of ``ratio`` or ``rank``.

        ``init="qr"``: column-pivoted QR picks ``rank`` of the conv's own filters as the basis and fits the
        others by least squares. ``init="svd"``: the best rank-r approximation (Eckart-Young); in the reduced
        form it is rewritten as ``W_r = (U P^-1)(P S V^T)`` with ``P`` the QR-chosen rows of ``U``, so the
        basis filters are rows of ``W_r`` and A has an identity block. ``init="random"``: fresh weights.
        """
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"from_conv expects an nn.Conv2d, got {type(conv).__name__}")
        check_choice(coeff, COEFF_CHOICES, "coeff")
        check_choice(init, INIT_CHOICES, "init")
        rank = resolve_rank(conv.out_channels, ratio=ratio, rank=rank)
        layer = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, bias=conv.bias is not None, rank=rank, coeff=coeff, groups=conv.groups,
                    impl=impl)
        layer = layer.to(device=conv.weight.device, dtype=conv.weight.dtype)
        if init == "random":
            return layer
        c_out = conv.out_channels
        w = conv.weight.detach().reshape(c_out, -1).to(torch.float64)  # (C_out, D), D = C_in*k*k
        if init == "qr":
            idx = pivoted_qr_columns(w.T, rank)
            basis = w[idx]  # (rank, D): actual filters of the conv
            a = torch.linalg.lstsq(basis.T, w.T).solution.T  # (C_out, rank), least-squares fit of every filter
            a[idx] = torch.eye(rank, dtype=a.dtype)  # basis filters are represented exactly
        else:  # svd
            # full U: when rank > C_in*k*k (e.g. the 3->64 stem at ratio 0.5) the extra singular values are 0
            u, s, vh = torch.linalg.svd(w, full_matrices=True)
            k = min(rank, len(s))
            b = torch.zeros(rank, w.shape[1], dtype=w.dtype)
            b[:k] = s[:k, None] * vh[:k]
            u_r = u[:, :rank]  # W_r = u_r @ b
            if coeff == "full":
                idx, basis, a = torch.arange(rank), b, u_r
            else:
                idx = pivoted_qr_columns(u_r.T, rank)  # rows of u_r giving a well-conditioned P
                p = u_r[idx]  # (rank, rank)
                basis = p @ b  # rows idx of W_r
                a = torch.linalg.solve(p.T, u_r.T).T  # u_r @ P^-1, identity at rows idx
                a[idx] = torch.eye(rank, dtype=a.dtype)
        with torch.no_grad():
            layer.weight.copy_(basis.reshape_as(layer.weight))
            if coeff == "full":
                layer.coefficients.copy_(a)
                layer._set_basis_positions(torch.arange(rank))
            else:
                layer._set_basis_positions(idx)
                layer.coefficients.copy_(a[layer.other_idx.cpu()])
            if conv.bias is not None:
                layer.bias.copy_(conv.bias)
        return layer

    def to_conv(self) -> nn.Conv2d:
        """One dense ``nn.Conv2d`` with the folded weight ``A @ W'`` (same outputs up to float rounding)."""
        conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
                         self.dilation, bias=self.bias is not None)
        conv = conv.to(device=self.weight.device, dtype=self.weight.dtype)
        with torch.no_grad():
            a = self.full_coeff().to(torch.float64)
            w = a @ self.weight.to(torch.float64).reshape(self.rank, -1)
            conv.weight.copy_(w.reshape_as(conv.weight))
            if self.bias is not None:
                conv.bias.copy_(self.bias)
        return conv

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
             f"rank={self.rank}, coeff={self.coeff!r}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.bias is None:
            s += ", bias=False"
        if self.impl != "auto":
            s += f", impl={self.impl!r}"
        return s


# Execution forms of the reduced layer: ``name -> form(layer, y) -> out``, where ``y`` is the basis output Y'
# (N, rank, H, W) and ``out`` is A Y' (N, C_out, H, W) in the original channel order, before the bias (``forward``
# adds it). Every form computes the same function of the same trainable parameters (``weight``, ``coefficients``)
# and buffers (``inv_perm``, the basis positions); they differ only in how the output is assembled, i.e. in speed
# and memory format. ``BasisConv2d(impl=name)`` picks one; ``"auto"`` is a resolution rule over them (see
# ``BasisConv2d.execution_form``). Only the reduced coefficients have forms: the full matrix is always one 1x1 conv.
# A new form is one entry here plus its test (tests/test_basis.py parametrises over this dict).


def _cat_form(layer: BasisConv2d, y: torch.Tensor) -> torch.Tensor:
    """Z = C Y' for the ``C_out - rank`` combined channels, ``cat([Y', Z])``, then, if the basis channels are not
    the first ones, a channel gather back to the original order: the paper's MAC count,
    ``(C_out - rank) * rank`` per pixel for the mix."""
    if layer.coefficients.shape[0] == 0:
        # rank == C_out: nothing to combine, the output is a permutation of the basis outputs
        return y if layer._order_identity else y[:, layer.inv_perm]
    z = F.conv2d(y, layer.coefficients[:, :, None, None])  # (N, C_out - rank, H, W)
    out = torch.cat([y, z], 1)  # (N, C_out, H, W), basis channels first
    if not layer._order_identity:
        out = out[:, layer.inv_perm]  # restore original channel order: drop-in replacement
    return out


def _dense_mix_form(layer: BasisConv2d, y: torch.Tensor) -> torch.Tensor:
    """One 1x1 conv with the constructed ``(C_out, rank)`` matrix ``A = P [I; C]``.

    Costs ``rank`` more MACs per pixel than ``"cat"`` but writes the output once, in the input's memory format:
    the gather of ``"cat"`` copies the whole output and drops channels_last, which made QR-initialised layers
    1.5-4.6x slower on CPU.
    """
    return F.conv2d(y, layer.full_coeff()[:, :, None, None])  # (N, C_out, H, W)


EXECUTION_FORMS: dict[str, Callable[[BasisConv2d, torch.Tensor], torch.Tensor]] = {
    "cat": _cat_form,
    "dense_mix": _dense_mix_form,
}
# ``impl`` values: the resolution rule "auto" and every registered form (error messages list them in this order)
IMPL_CHOICES = ("auto", *EXECUTION_FORMS)


def resolve_rank(out_channels: int, *, ratio: float | None = None, rank: int | None = None) -> int:
    """``rank`` given directly, or ``max(1, round(ratio * out_channels))``; exactly one must be set."""
    if (ratio is None) == (rank is None):
        raise ValueError(f"pass exactly one of ratio or rank (got ratio={ratio!r}, rank={rank!r})")
    if rank is not None:
        if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= out_channels:
            raise ValueError(f"rank must be an int in [1, {out_channels}], got {rank!r}")
        return rank
    check_ratio(ratio)
    return max(1, round(ratio * out_channels))


def check_ratio(ratio, name: str = "ratio") -> float:
    """Validate a rank ratio: a real number in (0, 1]."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not (0 < ratio <= 1):
        raise ValueError(f"{name} must be a number in (0, 1], got {ratio!r}")
    return float(ratio)
