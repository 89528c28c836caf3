"""The invariant subspace of the minimal model: its block basis, projections and pseudo-parameters.

The loss is unchanged by rotating the content space, and by rotating the position space
with any rotation that commutes with M. From W = 0, gradient flow on the population loss
stays in the matrices these rotations fix (the idea of the proof of Musat et al.'s Theorem 1,
as a secondary source summarises it): content x content blocks
``c I``, position x position blocks ``a I + b M``, content x position blocks 0. For the
concatenated model that is 19 coefficients (Theorem 1): 3 in W1, 12 in W2, 4 in W3, with
the names of :data:`CONCAT_COEFFICIENTS` (alpha3, beta2, gamma3 as in the paper; the block
of each of the other 16, and their indices, are this book's reconstruction). Rows of a block are the query side, columns the key
side. For the additive-residual variant the same argument gives 7 coefficients
(:data:`ADDITIVE_COEFFICIENTS`, beyond the paper); there ``beta2`` is W2's content block and
``gamma3`` W3's.

Each basis matrix is one block holding I or M; they are orthogonal (blocks are disjoint and
``tr M = 0``) with squared norm D, so a coefficient is ``<W, E_k> / D``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ihcore.musat.tasks import label_map_matrix

KEY_COEFFICIENTS = ("alpha3", "beta2", "gamma3")
# name: (matrix 0..2, query-side block, key-side block, "I" or "M")
CONCAT_COEFFICIENTS = {
    "alpha1": (0, "e", "e", "I"), "alpha2": (0, "p", "p", "I"), "alpha3": (0, "p", "p", "M"),
    "beta1": (1, "e", "e", "I"), "beta2": (1, "e", "a1e", "I"), "beta3": (1, "a1e", "e", "I"),
    "beta4": (1, "a1e", "a1e", "I"), "beta5": (1, "p", "p", "I"), "beta6": (1, "p", "p", "M"),
    "beta7": (1, "p", "a1p", "I"), "beta8": (1, "p", "a1p", "M"), "beta9": (1, "a1p", "p", "I"),
    "beta10": (1, "a1p", "p", "M"), "beta11": (1, "a1p", "a1p", "I"), "beta12": (1, "a1p", "a1p", "M"),
    "gamma1": (2, "out", "e", "I"), "gamma2": (2, "out", "a1e", "I"), "gamma3": (2, "out", "a2e", "I"),
    "gamma4": (2, "out", "a2a1e", "I"),
}
ADDITIVE_COEFFICIENTS = {
    "alpha1": (0, "e", "e", "I"), "alpha2": (0, "p", "p", "I"), "alpha3": (0, "p", "p", "M"),
    "beta2": (1, "e", "e", "I"), "beta5": (1, "p", "p", "I"), "beta6": (1, "p", "p", "M"),
    "gamma3": (2, "out", "e", "I"),
}
CONCAT_BLOCKS = ("e", "p", "a1e", "a1p", "a2e", "a2p", "a2a1e", "a2a1p")
ADDITIVE_BLOCKS = ("e", "p")


@dataclass(frozen=True)
class BlockBasis:
    """The basis matrices of the invariant subspace for model dimension D.

    names: the K coefficient names, grouped by matrix (W1's, then W2's, then W3's);
    matrices: for W1, W2, W3, a tensor (K_l, rows, cols) of that weight's basis matrices.
    """

    dim: int
    names: tuple[str, ...]
    matrices: tuple[torch.Tensor, torch.Tensor, torch.Tensor]

    def index(self, name: str) -> int:
        return self.names.index(name)

    def coefficients(self, weights) -> np.ndarray:
        """(K,) coefficients ``<W, E_k> / D`` of the orthogonal projection of (W1, W2, W3)."""
        values = [torch.einsum("kij,ij->k", E.to(W.device), W.detach()) / self.dim for E, W in zip(self.matrices, weights)]
        return torch.cat(values).cpu().numpy()

    def build(self, coefficients: torch.Tensor, matrices=None) -> tuple[torch.Tensor, ...]:
        """(W1, W2, W3) = sum_k c_k E_k for coefficients (K,) in the order of ``names`` (differentiable).

        ``matrices``: the basis matrices on the coefficients' device (default: :attr:`matrices`,
        moved there).
        """
        matrices = tuple(E.to(coefficients.device) for E in self.matrices) if matrices is None else matrices
        parts = coefficients.split([len(E) for E in matrices])
        return tuple(torch.einsum("k,kij->ij", c, E) for c, E in zip(parts, matrices))

    def project(self, weights) -> tuple[torch.Tensor, ...]:
        """Orthogonal projection of (W1, W2, W3) onto the subspace."""
        return self.build(torch.as_tensor(self.coefficients(weights)))

    def share_inside(self, weights) -> dict[str, float]:
        """In-subspace share ``||Proj W||^2 / ||W||^2`` of each matrix and of all three together.

        One minus the off-subspace share ``||W - Proj W||^2 / ||W||^2`` (this book's measure of
        Theorem 1's confinement; NaN for an all-zero matrix). Pass W_t - W_0 under random init.
        """
        inside = [float(p.pow(2).sum()) for p in self.project(weights)]
        total = [float(w.detach().pow(2).sum()) for w in weights]
        shares = {f"W{l + 1}": i / t if t > 0 else float("nan") for l, (i, t) in enumerate(zip(inside, total))}
        shares["all"] = sum(inside) / sum(total) if sum(total) > 0 else float("nan")
        return shares


def block_basis(dim: int, residual: str = "concat", label_map: str = "rotation") -> BlockBasis:
    """The block basis of the minimal model with content/position size ``dim`` (even); the position
    blocks' M is ``label_map``'s (:func:`ihcore.musat.tasks.label_map_matrix`: J, or the shift)."""
    coefficients = CONCAT_COEFFICIENTS if residual == "concat" else ADDITIVE_COEFFICIENTS
    blocks = CONCAT_BLOCKS if residual == "concat" else ADDITIVE_BLOCKS
    widths = (2, 4, 8) if residual == "concat" else (2, 2, 2)
    M = label_map_matrix(dim, label_map)
    stacks: list[list[torch.Tensor]] = [[], [], []]
    for matrix, row_block, col_block, kind in coefficients.values():
        E = torch.zeros(dim if matrix == 2 else widths[matrix] * dim, widths[matrix] * dim)
        r = 0 if row_block == "out" else blocks.index(row_block) * dim
        c = blocks.index(col_block) * dim
        E[r : r + dim, c : c + dim] = torch.eye(dim) if kind == "I" else M
        stacks[matrix].append(E)
    return BlockBasis(dim, tuple(coefficients), tuple(torch.stack(s) for s in stacks))
