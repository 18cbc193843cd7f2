r"""The relation model: encoder plus the two heads (handover and load), its loss and its predictions."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import HeteroData
from torch_geometric.nn import MLP
from torch_geometric.utils import scatter

from mobility_twin_models.relations.config import GraphConfig, ModelConfig
from mobility_twin_models.relations.graph import (
    CAND,
    CANDIDATE_DIM,
    FOLLOWS,
    ROAD,
    SERVER,
    SS,
    VEHICLE,
    VIA_DIM,
    VV,
    edge_dims,
    node_dims,
)
from mobility_twin_models.relations.nn.candidate_scorer import (
    CandidateScorer,
    group_argmax,
    group_log_softmax,
)
from mobility_twin_models.relations.nn.encoder import RelationEncoder


@dataclass(frozen=True)
class Predictions:
    """What the model says about one graph.

    ``server[v]``: predicted serving server of vehicle ``v`` at the horizon (-1: no candidate);
    ``probability[v]``: its probability; ``load[s]``: predicted load of server ``s``;
    ``candidate_prob[e]``: probability of every candidate pair.
    """

    server: Tensor
    probability: Tensor
    load: Tensor
    candidate_prob: Tensor


class RelationModel(torch.nn.Module):
    r"""Heterogeneous GNN over the twin graph with a handover head and a load head.

    Handover: a softmax over each vehicle's candidate servers (:class:`CandidateScorer`). Load: a
    residual forecast of each server's load :math:`\hat{L}_s(t + H) = L_s(t) + \lambda\,
    \mathrm{MLP}(\mathbf{h}_s)` with :math:`\lambda` the graph's load scale.

    Args:
        graph (GraphConfig): feature layout of the graphs it reads.
        model (ModelConfig): width, depth, and whether to pass messages at all.
    """

    def __init__(self, graph: GraphConfig | None = None, model: ModelConfig | None = None) -> None:
        super().__init__()
        graph, model = graph or GraphConfig(), model or ModelConfig()
        self.graph_config = graph
        self.model_config = model
        dims = edge_dims(graph)
        node_types = set(node_dims(graph))
        names = {et[1] for et in dims} | node_types
        unknown = set(model.without_relations) - names
        if unknown:
            raise ValueError(f"without_relations names unknown relation(s) {sorted(unknown)}; the relations are "
                             f"{sorted(names - node_types)}, and a node type ({', '.join(sorted(node_types))}) "
                             f"leaves out every relation that touches it")
        # a node type ("road", "server", ...) leaves out every relation that touches it
        kept = {et: d for et, d in dims.items()
                if et[1] not in model.without_relations and not set(model.without_relations) & {et[0], et[2]}}
        self.encoder = RelationEncoder(node_dims(graph), kept, model.hidden, model.layers,
                                       message_passing=model.message_passing, aggr={VV: "mean", FOLLOWS: "mean", SS: "mean"})
        # the roads into each candidate's cell: graph information, so neither the MLP nor a model without roads
        self.via_roads = graph.roads and model.message_passing and ROAD not in model.without_relations
        self.scorer = CandidateScorer(model.hidden, CANDIDATE_DIM, via_dim=VIA_DIM if self.via_roads else 0)
        self.load_head = MLP([model.hidden + 1, model.hidden, 1], norm=None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.encoder.reset_parameters()
        self.scorer.reset_parameters()
        self.load_head.reset_parameters()

    def forward(self, data: HeteroData) -> tuple[Tensor, Tensor]:
        """(candidate logits [C], load forecast [S] in vehicles)."""
        logits, _, load = self._forward(data)
        return logits, load

    def _forward(self, data: HeteroData) -> tuple[Tensor, Tensor, Tensor]:
        h = self.encoder(data.x_dict, data.edge_index_dict, data.edge_attr_dict)
        cand = data[CAND]
        via = (h[ROAD], cand.via_road, cand.via_pair, cand.via_attr) \
            if self.via_roads and ROAD in h and "via_road" in cand else None
        logits = self.scorer(h[VEHICLE], h[SERVER], cand.edge_index, cand.edge_attr, via)
        # the handover head's own forecast, aggregated over the vehicle-server relation: expected vehicles
        # per server at the horizon (sum of the candidate probabilities) is the load head's extra input;
        # detached so that the load loss does not bend the handover head
        n_v, n_s = data[VEHICLE].num_nodes, data[SERVER].num_nodes
        v, c = cand.edge_index
        scale = self.graph_config.load_scale
        logp = group_log_softmax(logits.detach(), v, n_v)
        if self.model_config.message_passing:
            expected = scatter(logp.exp(), c, dim=0, dim_size=n_s, reduce="sum")
            delta = (expected - data[SERVER].load) / scale
        else:  # without the graph a server knows nothing of the vehicles around it
            delta = torch.zeros(n_s)
        out = self.load_head(torch.cat([h[SERVER], delta.unsqueeze(-1)], dim=-1)).squeeze(-1)
        load = data[SERVER].load + scale * out
        return logits, logp, load

    def loss(self, data: HeteroData) -> tuple[Tensor, dict[str, float]]:
        """Handover cross-entropy over labelled vehicles plus ``load_weight`` times the L1 loss of the
        (scaled) load forecast (L1: the forecast is a median, which is what MAE rewards) over labelled servers. Needs ``vehicle.y_server``, ``vehicle.mask``,
        ``server.y_load``, ``server.mask`` (see :func:`mobility_twin_models.relations.dataset.label_graph`)."""
        logits, load = self(data)
        ho = handover_nll(data, logits)
        mask = data[SERVER].mask
        scale = self.graph_config.load_scale
        lo = (F.l1_loss(load[mask] / scale, data[SERVER].y_load[mask] / scale)
              if bool(mask.any()) else load.sum() * 0.0)
        total = ho + self.model_config.load_weight * lo
        return total, {"handover": float(ho.detach()), "load": float(lo.detach())}

    @torch.no_grad()
    def predict(self, data: HeteroData) -> Predictions:
        """Predictions for one graph. The model has neither dropout nor batch norm, so training and
        evaluation modes compute the same function: no mode switch is needed (it costs milliseconds)."""
        logits, logp, load = self._forward(data)
        n_v = data[VEHICLE].num_nodes
        v, c = data[CAND].edge_index
        best = group_argmax(logits, v, n_v)
        has = best >= 0
        server = torch.full((n_v,), -1, dtype=torch.long)
        prob = torch.zeros(n_v)
        server[has] = c[best[has]]
        prob[has] = logp[best[has]].exp()
        return Predictions(server, prob, load.clamp_min(0.0), logp.exp())


def handover_nll(data: HeteroData, logits: Tensor) -> Tensor:
    """Mean negative log-likelihood of the true server over labelled vehicles whose true server is among
    their candidates (others cannot be learned from this graph and are left out)."""
    n_v = data[VEHICLE].num_nodes
    v, c = data[CAND].edge_index
    logp = group_log_softmax(logits, v, n_v)
    y = data[VEHICLE].y_server
    mask = data[VEHICLE].mask
    hit = (c == y[v]) & mask[v]
    if not bool(hit.any()):
        return logits.sum() * 0.0
    return -logp[hit].mean()
