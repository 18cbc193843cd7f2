r"""Scores (vehicle, server) candidate pairs: which server will serve the vehicle at the horizon."""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn import MLP
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.utils import scatter


class CandidateScorer(torch.nn.Module):
    r"""A logit per candidate pair; a softmax over each vehicle's candidates gives the distribution of its
    serving server at the horizon.

    .. math::
        s_{v,c} = \mathrm{MLP}\big(\mathrm{ReLU}(\mathbf{W}_1 \mathbf{h}_v + \mathbf{W}_2 \mathbf{h}_c
        + \mathbf{W}_3 \mathbf{e}_{v,c} + \mathbf{b})\big), \qquad
        p(c \mid v) = \frac{\exp s_{v,c}}{\sum_{c' \in \mathcal{C}(v)} \exp s_{v,c'}}

    (the first layer of an MLP on :math:`[\mathbf{h}_v \| \mathbf{h}_c \| \mathbf{e}_{v,c}]`, with the node
    terms computed once per node rather than once per pair).

    With ``via_dim``, a pair also hears the roads by which the vehicle may enter the server's cell
    (:math:`\mathcal{R}(v, c)`: its own road, the roads ahead of it; see ``candidate.via_*`` in
    :mod:`~mobility_twin_models.relations.graph`), each with its embedding and features
    :math:`\mathbf{a}_{r}`:

    .. math::
        \mathbf{W}_4 \sum_{r \in \mathcal{R}(v, c)} \mathrm{ReLU}(\mathbf{W}_5 \mathbf{h}_r + \mathbf{W}_6 \mathbf{a}_r)

    is added inside the first ReLU: a relation of the pair itself, which a sum over the vehicle's roads
    (its embedding) cannot tell apart by server.

    Args:
        hidden (int): size of the vehicle and server embeddings.
        edge_dim (int): size of the candidate-pair features.
        mlp_hidden (int, optional): width of the scoring MLP. (default: :obj:`hidden`)
        via_dim (int, optional): size of the features of a road into a candidate's cell; 0: no such roads.
            (default: :obj:`0`)

    Shapes:
        - **input:** vehicle embeddings :math:`(|\mathcal{V}|, H)`, server embeddings :math:`(|\mathcal{S}|, H)`,
          candidate index :math:`(2, |\mathcal{C}|)` (vehicle, server), features :math:`(|\mathcal{C}|, D)`
        - **output:** logits :math:`(|\mathcal{C}|,)`
    """

    def __init__(self, hidden: int, edge_dim: int, *, mlp_hidden: int | None = None, via_dim: int = 0) -> None:
        super().__init__()
        self.hidden = hidden
        self.edge_dim = edge_dim
        self.via_dim = via_dim
        width = mlp_hidden or hidden
        self.lin_vehicle = Linear(hidden, width, bias=True)
        self.lin_server = Linear(hidden, width, bias=False)
        self.lin_edge = Linear(edge_dim, width, bias=False)
        self.mlp = MLP([width, width, 1], norm=None)
        if via_dim:
            self.lin_via_road = Linear(hidden, width, bias=True)
            self.lin_via_attr = Linear(via_dim, width, bias=False)
            self.lin_via = Linear(width, width, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin_vehicle.reset_parameters()
        self.lin_server.reset_parameters()
        self.lin_edge.reset_parameters()
        self.mlp.reset_parameters()
        if self.via_dim:
            self.lin_via_road.reset_parameters()
            self.lin_via_attr.reset_parameters()
            self.lin_via.reset_parameters()

    def forward(self, h_vehicle: Tensor, h_server: Tensor, edge_index: Tensor, edge_attr: Tensor,
                via: tuple[Tensor, Tensor, Tensor, Tensor] | None = None) -> Tensor:
        """Logits of the pairs; ``via``: (road embeddings [R, H], road [P], pair [P], features [P, via_dim]) of
        the roads into the candidates' cells (only with ``via_dim``)."""
        v, c = edge_index
        # index_select rather than indexing: the same rows, about twice as fast on a CPU; the edge term added
        # in the same product, the rest in place (fresh tensors; no step's gradient needs what they held)
        first = self.lin_vehicle(h_vehicle).index_select(0, v).addmm_(edge_attr, self.lin_edge.weight.t())
        first.add_(self.lin_server(h_server).index_select(0, c))
        if via is not None and self.via_dim:
            h_road, road, pair, attr = via
            msg = self.lin_via_road(h_road).index_select(0, road).addmm_(attr, self.lin_via_attr.weight.t()).relu_()
            # W_4 of the sum is the sum of W_4 of each road: mapped per road, added into its pair
            first.index_add_(0, pair, self.lin_via(msg))
        first.relu_()
        # self.mlp (Linear, ReLU, Linear), its hidden layer rectified in place: the pairs are most of the work
        hidden_lin, out_lin = self.mlp.lins
        return out_lin(hidden_lin(first).relu_()).squeeze(-1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(hidden={self.hidden}, edge_dim={self.edge_dim}, via_dim={self.via_dim})"


def group_log_softmax(logit: Tensor, index: Tensor, num_groups: int) -> Tensor:
    """Log-softmax of ``logit`` [E] within the groups given by ``index`` [E] (numerically stable)."""
    if logit.numel() == 0:
        return logit
    top = scatter(logit.detach(), index, dim=0, dim_size=num_groups, reduce="max")
    shifted = logit - top[index]
    norm = scatter(shifted.exp(), index, dim=0, dim_size=num_groups, reduce="sum")
    return shifted - norm.clamp_min(1e-30).log()[index]


def group_argmax(logit: Tensor, index: Tensor, num_groups: int) -> Tensor:
    """[num_groups] position (into ``logit``) of the largest logit of each group, -1 for empty groups.
    Ties go to the first position."""
    n = logit.numel()
    if n == 0:
        return torch.full((num_groups,), -1, dtype=torch.long)
    top = scatter(logit, index, dim=0, dim_size=num_groups, reduce="max")
    # each position where its group's largest logit is, the others past the end; the smallest per group
    pos = torch.where(logit == top.index_select(0, index), torch.arange(n), n)
    first = torch.full((num_groups,), n, dtype=torch.long).scatter_reduce_(0, index, pos, reduce="amin")
    return first.masked_fill_(first == n, -1)
