"""The spectral baseline (basisconv.core.spectral): retained energy, the threshold rule, matched savings."""
import pytest
import torch

from basisconv.experiment.models import build_model
from basisconv import conv_layers
from basisconv.core.basis import resolve_rank
from basisconv.core.counting import basis_params_saved
from basisconv.core.selection import matched_subset
from basisconv.core.sensitivity import candidate_layers
from basisconv.core.spectral import layer_energies, retained_energy, spectral_subset


def test_retained_energy_known_answer():
    # singular values 4, 2, 1 (squared 16, 4, 1 of 21) through orthogonal factors
    q1, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(0)))
    q2, _ = torch.linalg.qr(torch.randn(18, 3, generator=torch.Generator().manual_seed(1)))
    w = (q1 @ torch.diag(torch.tensor([4.0, 2.0, 1.0])) @ q2.T).reshape(3, 2, 3, 3)
    e = retained_energy(w, [1, 2, 3, 5])
    assert e[1] == pytest.approx(16 / 21) and e[2] == pytest.approx(20 / 21)
    assert e[3] == pytest.approx(1.0) and e[5] == 1.0  # beyond the matrix rank everything is kept
    assert retained_energy(torch.zeros(4, 1, 3, 3), [2]) == {2: 1.0}


def test_energy_grows_with_ratio():
    torch.manual_seed(0)
    m = build_model("resnet18", width=8)
    cands = candidate_layers(m, ["*"], ["conv1", "*downsample*"], [3])
    e = layer_energies(m, cands, [0.25, 0.5, 0.75])
    for n in cands:
        assert 0 < e[n][0.25] <= e[n][0.5] <= e[n][0.75] <= 1


@pytest.mark.parametrize("ratios", [[0.5], [0.25, 0.5], [0.25, 0.5, 0.75]])
def test_spectral_subset_matches_the_target_like_the_others(ratios):
    """Same contract as matched_subset: layers at swept ratios, its saving counted right, near the target, and
    each chosen ratio the smallest whose retained energy reaches the threshold."""
    torch.manual_seed(0)
    m = build_model("resnet18", width=8)
    recs = {r.name: r for r in conv_layers(m, (1, 3, 32, 32))}
    cands = candidate_layers(m, ["*"], ["conv1", "*downsample*"], [3])

    def saved(n, q):
        r = recs[n]
        return basis_params_saved(r.in_channels, r.out_channels, 3, resolve_rank(r.out_channels, ratio=q))
    biggest = max(saved(n, q) for n in cands for q in ratios)
    reachable = sum(saved(n, min(ratios)) for n in cands)
    energy = layer_energies(m, cands, ratios)
    for target in (20_000, 60_000, 100_000):
        s = spectral_subset(m, cands, target, ratios)
        assert set(s["ratios"]) == set(s["layers"]) and set(s["ratios"].values()) <= set(ratios)
        assert s["params_saved"] == sum(saved(n, q) for n, q in s["ratios"].items())
        if target <= reachable:  # never more than one whole layer away
            assert abs(s["params_saved"] - target) <= biggest, (target, s["params_saved"])
        tau = s["threshold"]
        for n in cands:  # the threshold rule itself
            ok = [q for q in sorted(ratios) if energy[n][q] >= tau - 1e-12]
            assert s["ratios"].get(n) == (ok[0] if ok else None)
        assert s == spectral_subset(m, cands, target, ratios)  # deterministic
        rnd = matched_subset(list(recs.values()), cands, target, ratios, order="random", seed=0)
        # a drop-in comparison subset for the basis stage (its MAC saving is added by the variant registry, which
        # has the layers' output sizes)
        assert s.keys() >= rnd.keys() - {"macs_saved", "matched_on"}


def test_spectral_prefers_low_rank_layers():
    """A layer whose filters are (nearly) rank-1 is converted before a full-rank one."""
    torch.manual_seed(0)
    m = build_model("resnet18", width=8)
    low, full = "layer1.0.conv1", "layer1.1.conv1"
    with torch.no_grad():
        w = m.get_submodule(low).weight
        w.copy_(torch.randn(w.shape[0], 1, 1, 1) * torch.randn(1, *w.shape[1:]) + 1e-3 * torch.randn_like(w))
    s = spectral_subset(m, [low, full], basis_params_saved(8, 8, 3, 2), [0.25])
    assert s["layers"] == [low] and s["energy"][low] > 0.99
    with pytest.raises(ValueError, match="at least one candidate"):
        spectral_subset(m, [], 1, [0.5])
