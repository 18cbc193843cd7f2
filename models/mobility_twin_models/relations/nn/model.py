r"""The relation model: encoder plus the two heads (handover and load), its loss and its predictions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.fx.experimental._config as fx_config
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
        return self._forward_tensors(*self._inputs(data))

    def _inputs(self, data: HeteroData) -> tuple:
        """The tensors of ``data`` that the forward pass reads, as :meth:`_forward_tensors` takes them."""
        cand = data[CAND]
        via = (cand.via_road, cand.via_pair, cand.via_attr) \
            if self.via_roads and ROAD in data.node_types and "via_road" in cand else None
        relations = self.encoder.edge_dims if self.model_config.message_passing else {}
        edge_index = {et: ei for et, ei in data.edge_index_dict.items() if et in relations}
        return (data.x_dict, edge_index, {et: data[et].edge_attr for et in edge_index}, cand.edge_index,
                cand.edge_attr, via, data[SERVER].load)

    def _forward_tensors(self, x_dict: dict[str, Tensor], edge_index_dict: dict[tuple, Tensor],
                         edge_attr_dict: dict[tuple, Tensor], cand_index: Tensor, cand_attr: Tensor,
                         via: tuple[Tensor, Tensor, Tensor] | None, server_load: Tensor
                         ) -> tuple[Tensor, Tensor, Tensor]:
        """(candidate logits, their log-probabilities within each vehicle, load forecast) from the graph's
        tensors (no :class:`HeteroData`: what :func:`torch.compile` can take)."""
        h = self.encoder(x_dict, edge_index_dict, edge_attr_dict)
        if via is not None and ROAD in h:
            via = (h[ROAD], *via)
        logits = self.scorer(h[VEHICLE], h[SERVER], cand_index, cand_attr, via)
        # the handover head's own forecast, aggregated over the vehicle-server relation: expected vehicles
        # per server at the horizon (sum of the candidate probabilities) is the load head's extra input;
        # detached so that the load loss does not bend the handover head
        n_v, n_s = h[VEHICLE].size(0), h[SERVER].size(0)
        v, c = cand_index[0], cand_index[1]
        scale = self.graph_config.load_scale
        logp = group_log_softmax(logits.detach(), v, n_v)
        if self.model_config.message_passing:
            expected = scatter(logp.exp(), c, dim=0, dim_size=n_s, reduce="sum")
            delta = (expected - server_load) / scale
        else:  # without the graph a server knows nothing of the vehicles around it
            delta = torch.zeros(n_s)
        out = self.load_head(torch.cat([h[SERVER], delta.unsqueeze(-1)], dim=-1)).squeeze(-1)
        load = server_load + scale * out
        return logits, logp, load

    def _predict_tensors(self, *inputs) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(server, probability, load, candidate probability) of :class:`Predictions` from
        :meth:`_inputs`."""
        logits, logp, load = self._forward_tensors(*inputs)
        cand_index = inputs[3]
        n_v = inputs[0][VEHICLE].size(0)
        v, c = cand_index[0], cand_index[1]
        if c.numel() == 0:
            server, prob = torch.full((n_v,), -1, dtype=torch.long), torch.zeros(n_v)
        else:
            best = group_argmax(logits, v, n_v)
            has = best >= 0
            at = best.clamp_min(0)
            server = torch.where(has, c.index_select(0, at), -1)
            prob = torch.where(has, logp.index_select(0, at).exp(), 0.0)
        return server, prob, load.clamp_min(0.0), logp.exp()

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

    @torch.inference_mode()
    def predict(self, data: HeteroData) -> Predictions:
        """Predictions for one graph. The model has neither dropout nor batch norm, so training and
        evaluation modes compute the same function: no mode switch is needed (it costs milliseconds).
        Computed in inference mode (no autograd bookkeeping at all): the returned tensors cannot be changed
        in place or take part in training outside it (clone them for that). After :meth:`compile_predict`,
        by the compiled forward pass wherever the graph allows it (see there)."""
        inputs = self._inputs(data)
        compiled = self.__dict__.get("_compiled")
        if compiled is None or not compiled.takes(inputs):
            if compiled is not None and compiled.error is None:
                compiled.other_graphs += 1
            return Predictions(*self._predict_tensors(*inputs))
        out = compiled(inputs)
        if out is not None:
            return Predictions(*out)
        try:
            return Predictions(*self._predict_tensors(*inputs))
        except Exception:  # the graph is at fault, not the program: the compiled pass goes on with the next
            compiled.forgive()
            raise

    @torch.inference_mode()  # as predict: the compiled program is for inference mode
    def compile_predict(self, example: HeteroData) -> str | None:
        """Compile :meth:`predict`'s forward pass (:func:`torch.compile`, shapes dynamic) and run it once on
        ``example`` (a graph with every relation; :func:`~mobility_twin_models.relations.graph.random_graph`
        makes one). Compiling takes tens of seconds on a CPU, once per process; the compiled pass fuses the
        model's many small operations and is about a fifth faster on the 1,000-vehicle SUMO twin. It
        agrees with the eager pass to float rounding (so a candidate within rounding of another's
        probability may be ranked the other way).

        A graph with other node types or relations than ``example`` is predicted eagerly, as is everything
        after a failure of the compiled pass (counted in :attr:`CompiledPredict.eager_fallbacks`, the error
        kept in :attr:`CompiledPredict.error`). Returns None, or why the pass could not be compiled (then
        :meth:`predict` stays eager)."""
        compiled = CompiledPredict(self)
        error = compiled.warm_up(self._inputs(example))
        self.__dict__["_compiled"] = None if error else compiled
        return error

    @property
    def compiled(self) -> CompiledPredict | None:
        """The compiled forward pass (:meth:`compile_predict`), or None."""
        return self.__dict__.get("_compiled")

    def __getstate__(self) -> dict:
        # a compiled function does not copy: a copy of the model (deepcopy, pickle) predicts eagerly
        state = self.__dict__.copy()
        state.pop("_compiled", None)
        return state


class CompiledPredict:
    """:meth:`RelationModel._predict_tensors` compiled by :func:`torch.compile` with dynamic shapes.

    Sizes are symbols, not constants (without "duck sizing": two sizes that happen to be equal in one
    graph are not assumed equal in the next), so one compiled program serves graphs of every size. The
    compiler would specialise sizes 0 and 1 (a relation without edges in this slot, a site with one RSU)
    and compile again, for tens of seconds: such a graph is padded instead (:meth:`prepare`), with nodes joined
    by edges and candidates among themselves only. No real node hears a padding node, so the real rows of
    the outputs are the unpadded graph's."""

    #: the smallest size the compiled program takes: fewer nodes of a type, edges of a relation, candidates
    #: or roads into their cells are padded to it
    PAD = 2

    def __init__(self, model: RelationModel) -> None:
        self._target = model._predict_tensors
        self.fn = self._compiled()
        self.relations: frozenset | None = None
        self.calls = 0
        self.eager_fallbacks = 0
        self.other_graphs = 0  # predicted eagerly: other node types or relations than the program's
        self.error: str | None = None
        self.repaired: list[str] = []  # damaged files of the compiler's cache removed before compiling again

    def _compiled(self):
        # cpp_wrapper: the program's calls into its kernels and BLAS made from C++, not from a Python wrapper
        # (a quarter of a millisecond of the 1,000-node graph's 7 ms pass; same answers)
        return torch.compile(self._target, dynamic=True, fullgraph=True, options={"cpp_wrapper": True})

    @staticmethod
    def _signature(inputs) -> frozenset:
        x_dict, edge_index_dict, _, _, _, via, _ = inputs
        return frozenset((*x_dict, *edge_index_dict, via is not None))

    def takes(self, inputs) -> bool:
        """Whether the compiled pass takes these inputs: the node types and relations it was compiled for."""
        return self.error is None and self._signature(inputs) == self.relations

    @classmethod
    def prepare(cls, inputs) -> tuple:
        """``inputs`` where every size is at least :data:`PAD`: each relation with fewer edges gets
        :data:`PAD` edges between padding nodes appended to its node types (as do the candidates and the
        roads into their cells, and a node type with fewer nodes); most graphs need none. No tensor is
        given twice."""
        x_dict, edge_index_dict, edge_attr_dict, cand_index, cand_attr, via, load = inputs
        # one tensor given for two inputs (a graph's static relations share their features both ways) would
        # make the program compile again: a copy for each further use
        seen: set[int] = set()

        def own(v: Tensor) -> Tensor:
            if id(v) in seen:
                return v.clone()
            seen.add(id(v))
            return v

        x_dict = {t: own(x) for t, x in x_dict.items()}
        edge_index_dict = {et: own(v) for et, v in edge_index_dict.items()}
        edge_attr_dict = {et: own(v) for et, v in edge_attr_dict.items()}
        cand_index, cand_attr, load = own(cand_index), own(cand_attr), own(load)
        via = None if via is None else tuple(own(v) for v in via)
        k = cls.PAD
        short = [et for et, ei in edge_index_dict.items() if ei.size(1) < k]
        pad_via = via is not None and via[0].size(0) < k
        pad_cand = cand_index.size(1) < k or pad_via
        grow = {t for t, x in x_dict.items() if x.size(0) < k} | {t for et in short for t in (et[0], et[-1])}
        grow |= {VEHICLE, SERVER} if pad_cand else set()
        grow |= {ROAD} if pad_via else set()
        if not grow:
            return x_dict, edge_index_dict, edge_attr_dict, cand_index, cand_attr, via, load
        at = {t: x.size(0) for t, x in x_dict.items()}  # the first padding node of each type

        def rows(x: Tensor) -> Tensor:
            return torch.cat([x, x.new_zeros(k, *x.shape[1:])])

        def edges(index: Tensor, src: str, dst: str) -> Tensor:
            return torch.cat([index, torch.tensor([[at[src]] * k, [at[dst]] * k], dtype=index.dtype)], dim=1)

        x_dict = {t: rows(x) if t in grow else x for t, x in x_dict.items()}
        edge_index_dict = {et: edges(ei, et[0], et[-1]) if et in short else ei for et, ei in edge_index_dict.items()}
        edge_attr_dict = {et: rows(ea) if et in short else ea for et, ea in edge_attr_dict.items()}
        if pad_via:
            road, pair, attr = via
            via = (torch.cat([road, road.new_full((k,), at[ROAD])]),
                   torch.cat([pair, pair.new_full((k,), cand_index.size(1))]), rows(attr))
        if pad_cand:
            cand_index, cand_attr = edges(cand_index, VEHICLE, SERVER), rows(cand_attr)
        if SERVER in grow:
            load = rows(load)
        return x_dict, edge_index_dict, edge_attr_dict, cand_index, cand_attr, via, load

    def __call__(self, inputs) -> tuple[Tensor, ...] | None:
        """The compiled pass's outputs for the real nodes, or None after a failure (the caller predicts
        eagerly)."""
        n_v, n_s, n_c = inputs[0][VEHICLE].size(0), inputs[0][SERVER].size(0), inputs[3].size(1)
        try:
            with torch.inference_mode(False):  # padding made as the graph's tensors are (not inference
                padded = self.prepare(inputs)    # tensors, which the compiled program would take anew)
            # the first call compiles (sizes as symbols of their own: no duck sizing); after it, a graph the
            # program does not fit is an error (then eager), never a compile of tens of seconds in the middle
            # of the live stream
            with torch.compiler.set_stance("fail_on_recompile") if self.calls else \
                    fx_config.patch(use_duck_shape=False):
                server, prob, load, cand_prob = self.fn(*padded)
        except Exception as err:  # the eager pass stays right; say once why the compiled one stopped
            self.error = f"{type(err).__name__}: {err}"
            self.eager_fallbacks += 1
            return None
        self.calls += 1
        return server[:n_v], prob[:n_v], load[:n_s], cand_prob[:n_c]

    def forgive(self) -> None:
        """The last failure was the graph's (the eager pass failed on it too): take the next graphs again."""
        self.error = None
        self.eager_fallbacks -= 1

    def warm_up(self, inputs) -> str | None:
        """Compile on ``inputs``. Returns None or the error.

        A file of the compiler's on-disk cache that another process left damaged (a compile killed while
        writing it: a library of zeros) fails the compile; such files named in the error are removed and
        the pass compiled once more (:attr:`repaired` lists them)."""
        self.relations = self._signature(inputs)
        self(inputs)
        damaged = _cache_files_in(self.error)
        if damaged:
            for path in damaged:
                path.unlink(missing_ok=True)
            self.repaired = [str(p) for p in damaged]
            self.error, self.eager_fallbacks = None, 0
            self.fn = self._compiled()
            self(inputs)
        return self.error


def _cache_files_in(error: str | None) -> list[Path]:
    """The files of torch's compiler cache (``TORCHINDUCTOR_CACHE_DIR``) that ``error`` names."""
    if not error:
        return []
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    root = Path(cache_dir()).resolve()
    found = []
    for name in re.findall(r"(/[^\s:'\"]+)", error):
        path = Path(name)
        if path.is_file() and root in path.resolve().parents:
            found.append(path)
    return found


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
