r"""Elastic weight consolidation (Kirkpatrick et al., 2017), online form (Schwarz et al., 2018).

At the end of a task the diagonal of the empirical Fisher information is estimated from the squared
gradients of the loss on a few of the task's graphs, and the parameters are anchored:

.. math::
    \mathcal{L}_{\mathrm{EWC}}(\theta) = \frac{\lambda}{2} \sum_i F_i (\theta_i - \theta^{*}_i)^2,
    \qquad F \leftarrow \gamma F + F_{\mathrm{new}}

with :math:`\theta^*` the parameters at the end of the last task and :math:`\gamma` the decay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor


class EWC:
    """Diagonal-Fisher penalty keeping a model near the parameters that served earlier tasks.

    Args:
        lam: :math:`\\lambda`, strength of the penalty.
        decay: :math:`\\gamma`, how much of the old Fisher survives each consolidation (1: plain sum).
    """

    def __init__(self, lam: float, *, decay: float = 1.0) -> None:
        self.lam = float(lam)
        self.decay = float(decay)
        self.fisher: dict[str, Tensor] = {}
        self.anchor: dict[str, Tensor] = {}
        self.tasks = 0

    def consolidate(self, model: torch.nn.Module, batches: Iterable, loss_fn: Callable[[object], Tensor]) -> None:
        """Estimate the Fisher on ``batches`` (one gradient each) and anchor the current parameters."""
        params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        fisher = {n: torch.zeros_like(p) for n, p in params.items()}
        count = 0
        was = model.training
        model.train()
        for batch in batches:
            model.zero_grad(set_to_none=True)
            loss_fn(batch).backward()
            for n, p in params.items():
                if p.grad is not None:
                    fisher[n] += p.grad.detach() ** 2
            count += 1
        model.zero_grad(set_to_none=True)
        model.train(was)
        if count == 0:
            return
        for n in fisher:
            fisher[n] /= count
            old = self.fisher.get(n)
            self.fisher[n] = fisher[n] if old is None else self.decay * old + fisher[n]
            self.anchor[n] = params[n].detach().clone()
        self.tasks += 1

    def penalty(self, model: torch.nn.Module) -> Tensor:
        if not self.fisher:
            return torch.zeros(())
        total = torch.zeros(())
        for n, p in model.named_parameters():
            if n in self.fisher:
                total = total + (self.fisher[n] * (p - self.anchor[n]) ** 2).sum()
        return 0.5 * self.lam * total

    @property
    def nbytes(self) -> int:
        return sum(t.element_size() * t.numel() for d in (self.fisher, self.anchor) for t in d.values())

    def state_dict(self) -> dict:
        return {"lam": self.lam, "decay": self.decay, "fisher": self.fisher, "anchor": self.anchor,
                "tasks": self.tasks}

    def load_state_dict(self, state: dict) -> None:
        self.lam, self.decay = float(state["lam"]), float(state["decay"])
        self.fisher = {k: v.clone() for k, v in state["fisher"].items()}
        self.anchor = {k: v.clone() for k, v in state["anchor"].items()}
        self.tasks = int(state["tasks"])
