r"""One relation (edge type) of the heterogeneous graph: a message-passing operator with edge features."""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.typing import Adj, PairTensor


class RelationConv(MessagePassing):
    r"""Messages along one relation, shaped by the geometry of each edge.

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{W}_1 \mathbf{x}_i + \bigoplus_{j \in \mathcal{N}(i)}
        \mathrm{ReLU}\left(\mathbf{W}_2 \mathbf{x}_j + \mathbf{W}_3 \mathbf{e}_{j,i} + \mathbf{b}\right)

    where :math:`\bigoplus` is the aggregation (``"sum"`` keeps counts, e.g. how many vehicles a server
    serves; ``"mean"`` keeps scale when degrees vary) and :math:`\mathbf{e}_{j,i}` the edge features
    (relative position, distance, ...). Works on bipartite relations (source and target of different
    node types).

    Args:
        in_channels (int or tuple): size of source and target features (one int when equal).
        out_channels (int): size of the output.
        edge_dim (int): size of the edge features.
        aggr (str, optional): aggregation of messages. (default: :obj:`"sum"`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}_s|, F_s)` or a pair with
          :math:`(|\mathcal{V}_t|, F_t)`, edge indices :math:`(2, |\mathcal{E}|)`, edge features
          :math:`(|\mathcal{E}|, D)`
        - **output:** target node features :math:`(|\mathcal{V}_t|, F_{out})`
    """

    def __init__(self, in_channels: int | tuple[int, int], out_channels: int, *, edge_dim: int,
                 aggr: str = "sum") -> None:
        super().__init__(aggr=aggr)
        if isinstance(in_channels, int):
            in_channels = (in_channels, in_channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.edge_dim = edge_dim
        self.lin_root = Linear(in_channels[1], out_channels, bias=False)
        self.lin_src = Linear(in_channels[0], out_channels, bias=True)
        self.lin_edge = Linear(edge_dim, out_channels, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.lin_root.reset_parameters()
        self.lin_src.reset_parameters()
        self.lin_edge.reset_parameters()

    def forward(self, x: Tensor | PairTensor, edge_index: Adj, edge_attr: Tensor) -> Tensor:
        if isinstance(x, Tensor):
            x = (x, x)
        x_src, x_dst = x
        out = self.propagate(edge_index, x=(self.lin_src(x_src), x_dst), edge_attr=edge_attr,
                             size=(x_src.size(0), x_dst.size(0)))
        return out + self.lin_root(x_dst)

    def message(self, x_j: Tensor, edge_attr: Tensor) -> Tensor:
        return torch.relu(x_j + self.lin_edge(edge_attr))

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"edge_dim={self.edge_dim}, aggr={self.aggr})")
