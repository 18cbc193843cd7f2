r"""Node embeddings of the twin graph: per-type input layers, then message passing over the relations."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import LayerNorm, ModuleDict, ModuleList
from torch_geometric.nn import HeteroConv
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.typing import EdgeType, NodeType

from mobility_twin_models.relations.nn.relation_conv import RelationConv, relation_sum


def _key(edge_type: EdgeType) -> str:
    return "__".join(edge_type)


class RelationEncoder(torch.nn.Module):
    r"""Embeds every node of a heterogeneous twin graph.

    .. math::
        \mathbf{h}^{(0)}_v = \mathrm{ReLU}(\mathbf{W}_{\tau(v)} \mathbf{x}_v), \qquad
        \mathbf{h}^{(l+1)}_v = \mathrm{LayerNorm}\Big(\mathbf{h}^{(l)}_v + \mathrm{ReLU}\big(
        \textstyle\sum_{r \ni v} \mathrm{RelationConv}_r(\mathbf{h}^{(l)})_v\big)\Big)

    summing over the relations :math:`r` that end at node type :math:`\tau(v)`. With
    ``message_passing=False`` the graph is ignored: each layer is the per-type linear map
    :math:`\mathbf{W}^{(l)}_{\tau(v)} \mathbf{h}^{(l)}_v` in place of the relation sum (the MLP ablation,
    same depth and width).

    Args:
        node_dims (dict): input feature size of each node type.
        edge_dims (dict): edge feature size of each relation (edge type) used for messages.
        hidden (int): embedding size.
        layers (int): number of layers.
        message_passing (bool, optional): use the relations. (default: :obj:`True`)
        aggr (dict, optional): aggregation per relation; relations not named use ``"sum"``.

    Shapes:
        - **input:** ``x_dict`` :math:`\{\tau: (|\mathcal{V}_\tau|, F_\tau)\}`, ``edge_index_dict``
          :math:`\{r: (2, |\mathcal{E}_r|)\}`, ``edge_attr_dict`` :math:`\{r: (|\mathcal{E}_r|, D_r)\}`
        - **output:** :math:`\{\tau: (|\mathcal{V}_\tau|, H)\}`
    """

    def __init__(self, node_dims: dict[NodeType, int], edge_dims: dict[EdgeType, int], hidden: int, layers: int,
                 *, message_passing: bool = True, aggr: dict[EdgeType, str] | None = None) -> None:
        super().__init__()
        self.node_dims = dict(node_dims)
        self.edge_dims = dict(edge_dims)
        self.hidden = hidden
        self.layers = layers
        self.message_passing = message_passing
        aggr = aggr or {}
        self.inp = ModuleDict({t: Linear(d, hidden) for t, d in node_dims.items()})
        if message_passing:
            self.convs = ModuleList([
                HeteroConv({et: RelationConv(hidden, hidden, edge_dim=d, aggr=aggr.get(et, "sum"))
                            for et, d in edge_dims.items()}, aggr="sum")
                for _ in range(layers)
            ])
        else:
            self.convs = ModuleList([ModuleDict({t: Linear(hidden, hidden) for t in node_dims}) for _ in range(layers)])
        self.norms = ModuleList([ModuleDict({t: LayerNorm(hidden) for t in node_dims}) for _ in range(layers)])
        # each layer's relations in a plain dict (not registered: the same modules as in self.convs): PyG's
        # ModuleDict rewrites every key it hands out, at every look-up
        self._relations = [dict(conv.convs.items()) for conv in self.convs] if message_passing else []
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in self.inp.values():
            lin.reset_parameters()
        for conv in self.convs:
            if isinstance(conv, HeteroConv):
                conv.reset_parameters()
            else:
                for lin in conv.values():
                    lin.reset_parameters()
        for norms in self.norms:
            for norm in norms.values():
                norm.reset_parameters()

    def forward(self, x_dict: dict[NodeType, Tensor], edge_index_dict: dict[EdgeType, Tensor],
                edge_attr_dict: dict[EdgeType, Tensor]) -> dict[NodeType, Tensor]:
        h = {t: self.inp[t](x).relu_() for t, x in x_dict.items() if t in self.inp}  # fresh products
        if self.message_passing:
            edges = {et: ei for et, ei in edge_index_dict.items() if et in self.edge_dims}
            attrs = {et: edge_attr_dict[et] for et in edges}
        for layer, (conv, norms) in enumerate(zip(self.convs, self.norms, strict=True)):
            if self.message_passing:
                out = relation_sum(self._relations[layer], h, edges, attrs)  # = conv(h, edges, edge_attr_dict=attrs)
            else:
                out = {t: conv[t](x) for t, x in h.items()}
            # out[t] is a fresh sum: rectified in place
            h = {t: norms[t](x + out[t].relu_()) if t in out else norms[t](x) for t, x in h.items()}
        return h

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(hidden={self.hidden}, layers={self.layers}, "
                f"message_passing={self.message_passing}, relations={len(self.edge_dims)})")
