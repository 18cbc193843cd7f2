r"""Distributed deep learning (DDL) placement, Zhang et al. Sec. 4 and Algorithm 1.

Network (Fig. 2, Sec. 5.1):

* a fully connected **feature extractor** with one hidden layer, applied to each twin group: the
  group's devices (workload and position, Sec. 4.1 "input W and L ... according to G") -> a feature
  vector. The same weights serve every group (group indices are arbitrary labels);
* **K parallel DNNs** of the same shape and different random (normal) initial weights, each with two
  ReLU hidden layers and a sigmoid output layer: the features of all twins (plus the server
  descriptor, see below) -> ``B = ceil(log2(S + 1))`` outputs per twin;
* **eq. 19** quantises each output: ``V = 1 if V_hat <= 1/2 else 0``; the B bits of a twin (most
  significant first) are the binary code of its host (codes above S mean the cloud), then one-hot X.

Training (Algorithm 1, Sec. 4.2): for each generated instance the K DNNs propose K placements, the one
with the lowest Q (eq. 17) is the label; (input, label) goes into a replay memory that, once full,
replaces its oldest entry with every new one and after each replacement trains every DNN with Adam on
its own random batch with the cross-entropy of eq. 20. The label for the sigmoid outputs is ``1 - V``,
so that eq. 19 applied to the label gives back the code V (eq. 19 maps *low* outputs to 1; this is the
same learning problem as the usual convention with every bit flipped).

Convergence (Sec. 4.3, eq. 21): ``C = mean_i min(C_old_i, C_new_i) / max(C_old_i, C_new_i)`` over a
fixed test set, the costs of the decisions before and after a training epoch.

Beyond the paper, stated where used: the server descriptor (positions and clocks of the edge servers)
is appended to the DNN input. In the paper's set-up the servers are fixed, the descriptor is a
constant, and the network is the paper's (a constant input is only a bias); a model trained with
``vary_servers`` learns to place on server layouts it has not seen, which the ROS node needs.
Inside a group, devices are fed largest workload first (a canonical order for a fully connected layer).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.placement.config import PlacementSetup, ScenarioConfig, SystemConfig
from models.placement.cost import placement_costs, twin_cost_table
from models.placement.errors import CheckpointError, PlacementError
from models.placement.instance import Instance, InstanceGenerator

DEVICE_FEATURES = 4  # present, w / w_scale, x / width, y / height
SERVER_FEATURES = 3  # x / width, y / height, f / f_scale

# --- encoding -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputSpec:
    """The shape and scaling of the DDL input: what a checkpoint can decide.

    Args:
        max_twins: M of the network (instances with fewer twins are padded with empty ones).
        max_devices_per_twin: devices per group the extractor sees (more are cut, smallest workloads first).
        n_edge: S.
        field_m: positions are divided by this (width, height).
        workload_scale_mb: workloads are divided by this.
        freq_scale_ghz: clocks are divided by this.
    """

    max_twins: int = 15
    max_devices_per_twin: int = 16
    n_edge: int = 3
    field_m: tuple[float, float] = (1000.0, 800.0)
    workload_scale_mb: float = 40.0
    freq_scale_ghz: float = 3.5

    @classmethod
    def for_setup(cls, scenario: ScenarioConfig, system: SystemConfig) -> InputSpec:
        return cls(scenario.n_twins, scenario.max_devices_per_twin, system.n_edge, tuple(system.field_m),
                   scenario.workload_mb[1], max(system.cloud_freq_ghz, system.edge_freq_ghz[1]))

    @property
    def n_hosts(self) -> int:
        return self.n_edge + 1

    @property
    def n_bits(self) -> int:
        """B: bits of one twin's host code."""
        return max(1, math.ceil(math.log2(self.n_hosts)))


@dataclass
class EncodedBatch:
    """Network input for a batch of instances.

    Attributes:
        devices: (batch, M, n_max * 4) float32, per group ``(present, w, x, y)`` of each device slot.
        servers: (batch, S * 3) float32.
        twin_mask: (batch, M) bool, the twins that exist (have at least one device).
    """

    devices: np.ndarray
    servers: np.ndarray
    twin_mask: np.ndarray


def encode(instances: Sequence[Instance], spec: InputSpec) -> EncodedBatch:
    """Encode instances for the network (see :class:`InputSpec`)."""
    b, m_max, n_max = len(instances), spec.max_twins, spec.max_devices_per_twin
    devices = np.zeros((b, m_max, n_max, DEVICE_FEATURES), dtype=np.float32)
    servers = np.zeros((b, spec.n_edge * SERVER_FEATURES), dtype=np.float32)
    mask = np.zeros((b, m_max), dtype=bool)
    width, height = spec.field_m
    for i, inst in enumerate(instances):
        if inst.n_twins > m_max:
            raise PlacementError(f"instance has {inst.n_twins} twins, the network takes at most {m_max}")
        if inst.servers.n_edge != spec.n_edge:
            raise PlacementError(f"instance has {inst.servers.n_edge} edge servers, the network {spec.n_edge}")
        order = np.lexsort((-inst.workload_mb, inst.owner))  # by twin, then largest workload first
        owner = inst.owner[order]
        first = np.searchsorted(owner, owner)  # index of the group's first device in `order`
        slot = np.arange(order.size) - first
        keep = slot < n_max
        rows, slots = owner[keep], slot[keep]
        src = order[keep]
        devices[i, rows, slots, 0] = 1.0
        devices[i, rows, slots, 1] = inst.workload_mb[src] / spec.workload_scale_mb
        devices[i, rows, slots, 2] = inst.xy_m[src, 0] / width
        devices[i, rows, slots, 3] = inst.xy_m[src, 1] / height
        srv = inst.servers
        servers[i] = np.column_stack([srv.edge_xy_m[:, 0] / width, srv.edge_xy_m[:, 1] / height,
                                      srv.edge_freq_ghz / spec.freq_scale_ghz]).ravel()
        mask[i, : inst.n_twins] = inst.twin_sizes > 0
    return EncodedBatch(devices.reshape(b, m_max, n_max * DEVICE_FEATURES), servers, mask)


def quantise(outputs: torch.Tensor | np.ndarray) -> np.ndarray:
    """Eq. 19: ``V = 1 if V_hat <= 1/2 else 0`` element-wise."""
    out = outputs.detach().cpu().numpy() if isinstance(outputs, torch.Tensor) else np.asarray(outputs)
    return (out <= 0.5).astype(np.int64)


def bits_to_hosts(bits: np.ndarray, n_hosts: int) -> np.ndarray:
    """(..., M, B) binary codes, most significant bit first -> (..., M) host indices (codes >= S+1: the cloud)."""
    n_bits = bits.shape[-1]
    code = (bits * (1 << np.arange(n_bits - 1, -1, -1))).sum(-1)
    return np.minimum(code, n_hosts - 1)


def hosts_to_bits(hosts: np.ndarray, n_bits: int) -> np.ndarray:
    """(..., M) host indices -> (..., M, B) binary codes, most significant bit first."""
    hosts = np.asarray(hosts, dtype=np.int64)
    return (hosts[..., None] >> np.arange(n_bits - 1, -1, -1)) & 1


# --- network ------------------------------------------------------------------------------------------


class FeatureExtractor(nn.Module):
    """One hidden layer, shared by all groups: (..., n_max * 4) -> (..., features)."""

    def __init__(self, in_features: int, hidden: int, features: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(in_features, hidden)
        self.out = nn.Linear(hidden, features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in (self.hidden, self.out):
            nn.init.normal_(layer.weight, std=math.sqrt(2.0 / layer.in_features))
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x)))


class ParallelDNNs(nn.Module):
    """K independent MLPs (two ReLU hidden layers, sigmoid output) evaluated together with batched matmuls.

    Shapes:
        input: (K, batch, in_features) (or (batch, in_features), replicated to every DNN);
        output: (K, batch, out_features), in (0, 1).
    """

    def __init__(self, k: int, in_features: int, hidden: tuple[int, int], out_features: int) -> None:
        super().__init__()
        sizes = [in_features, *hidden, out_features]
        self.k = k
        self.weights = nn.ParameterList([nn.Parameter(torch.empty(k, a, b)) for a, b in itertools.pairwise(sizes)])
        self.biases = nn.ParameterList([nn.Parameter(torch.empty(k, 1, b)) for b in sizes[1:]])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Normal weights, different for every DNN (Sec. 4.2), He-scaled; zero biases."""
        for w, b in zip(self.weights, self.biases, strict=True):
            nn.init.normal_(w, std=math.sqrt(2.0 / w.shape[1]))
            nn.init.zeros_(b)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.k, -1, -1)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = torch.relu(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


@dataclass(frozen=True)
class DDLConfig:
    """Hyper-parameters of the DDL model and of Algorithm 1.

    Args:
        k: number of parallel DNNs (Sec. 5.2.2 settles on 12).
        extractor_hidden / features: the feature extractor's hidden width and output size per twin.
        hidden: the two hidden layers of each DNN.
        learning_rate: Adam (Sec. 5.2.1 sweeps 1e-5 .. 1e-2).
        memory_size: replay memory ("database") entries.
        batch_size: U, the batch each DNN trains on after every replacement.
        train_interval: train after every this many replacements (Algorithm 1: 1).
        iterations: generated instances (the outer loop of Algorithm 1).
        vary_servers: train on new random servers for every instance (beyond the paper; for the node).
        crossover_labels: beyond the paper: the training label takes each twin's best host among the K
            proposals instead of the best whole proposal (still no solver, no labelled data); valid because
            Q is a sum of per-twin terms.
        crossover_decisions: the same for the decision (Algorithm 1 line 24).
    """

    k: int = 12
    extractor_hidden: int = 32
    features: int = 16
    hidden: tuple[int, int] = (128, 64)
    learning_rate: float = 1e-3
    memory_size: int = 1024
    batch_size: int = 32
    train_interval: int = 1
    iterations: int = 4000
    vary_servers: bool = False
    crossover_labels: bool = False
    crossover_decisions: bool = False

    def __post_init__(self) -> None:
        for name in ("k", "extractor_hidden", "features", "memory_size", "batch_size", "train_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {self.iterations!r}")
        if len(self.hidden) != 2 or min(self.hidden) < 1:
            raise ValueError(f"hidden must be two layer widths >= 1, got {self.hidden!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")


class DDLModel(nn.Module):
    """Feature extractor + K parallel DNNs. ``forward`` -> (K, batch, M, B) sigmoid outputs."""

    def __init__(self, spec: InputSpec, config: DDLConfig) -> None:
        super().__init__()
        self.spec = spec
        self.config = config
        self.extractor = FeatureExtractor(spec.max_devices_per_twin * DEVICE_FEATURES, config.extractor_hidden,
                                          config.features)
        self.dnns = ParallelDNNs(config.k, spec.max_twins * config.features + spec.n_edge * SERVER_FEATURES,
                                 tuple(config.hidden), spec.max_twins * spec.n_bits)

    def logits(self, devices: torch.Tensor, servers: torch.Tensor) -> torch.Tensor:
        """(batch, M, n_max*4), (batch, S*3), or with a leading K -> (K, batch, M, B) pre-sigmoid outputs."""
        feats = self.extractor(devices).flatten(-2)  # (..., M * F)
        x = torch.cat([feats, servers], dim=-1)
        return self.dnns.logits(x).unflatten(-1, (self.spec.max_twins, self.spec.n_bits))

    def forward(self, devices: torch.Tensor, servers: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(devices, servers))

    def __repr__(self) -> str:
        c = self.config
        return (f"{type(self).__name__}(K={c.k}, M={self.spec.max_twins}, S={self.spec.n_edge}, "
                f"extractor={c.extractor_hidden}->{c.features}, hidden={tuple(c.hidden)}, bits={self.spec.n_bits})")


# --- decisions ----------------------------------------------------------------------------------------


def candidate_hosts(model: DDLModel, batch: EncodedBatch) -> np.ndarray:
    """(K, batch, M) host index of every twin in each DNN's decision (eq. 19, then code -> host)."""
    with torch.no_grad():
        out = model(torch.from_numpy(batch.devices), torch.from_numpy(batch.servers))
    return bits_to_hosts(quantise(out), model.spec.n_hosts)


def select_best(candidates: np.ndarray, tables: Sequence[np.ndarray], *, crossover: bool = False
                ) -> tuple[np.ndarray, np.ndarray]:
    """Algorithm 1 line 9/24: per instance the candidate with the lowest Q.

    Args:
        candidates: (K, batch, M_net) hosts; the first ``M`` of instance i's table are used.
        tables: per instance a cost table (M, S + 1).
        crossover: instead, each twin's best host among the K candidates (see ``DDLConfig.crossover``).
    Returns:
        ``(hosts, costs)``: (batch, M_net) the chosen placements and (batch,) their Q.
    """
    b = candidates.shape[1]
    best = np.empty(candidates.shape[1:], dtype=np.int64)
    costs = np.empty(b)
    for i, table in enumerate(tables):
        m = table.shape[0]
        cand = candidates[:, i, :m]
        if crossover:
            per_twin = table[np.arange(m), cand]  # (K, M)
            pick = per_twin.argmin(axis=0)
            best[i] = candidates[pick[0], i]
            best[i, :m] = cand[pick, np.arange(m)]
            costs[i] = per_twin[pick, np.arange(m)].sum()
            continue
        q = placement_costs(table, cand)
        j = int(np.argmin(q))
        best[i] = candidates[j, i]
        costs[i] = q[j]
    return best, costs


class DDLPlacer:
    """A trained DDL model as a placement policy: encode, K forward passes, eq. 19, best of K by Q."""

    def __init__(self, model: DDLModel, system: SystemConfig, alpha: float) -> None:
        self.model = model.eval()
        self.system = system
        self.alpha = alpha

    def place(self, instance: Instance, table: np.ndarray | None = None) -> np.ndarray:
        """(M,) hosts of one instance (Algorithm 1 lines 19-25)."""
        if table is None:
            table = twin_cost_table(instance, self.system, self.alpha)
        hosts, _ = select_best(candidate_hosts(self.model, encode([instance], self.model.spec)), [table],
                               crossover=self.model.config.crossover_decisions)
        return hosts[0, : instance.n_twins]

    def place_many(self, instances: Sequence[Instance], tables: Sequence[np.ndarray]) -> np.ndarray:
        hosts, _ = select_best(candidate_hosts(self.model, encode(instances, self.model.spec)), tables,
                               crossover=self.model.config.crossover_decisions)
        return hosts


# --- replay memory ------------------------------------------------------------------------------------


class ReplayMemory:
    """The "database" of Algorithm 1: fixed capacity; once full, each new entry replaces the oldest."""

    def __init__(self, capacity: int, spec: InputSpec) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity!r}")
        m, width = spec.max_twins, spec.max_devices_per_twin * DEVICE_FEATURES
        self.capacity = capacity
        self.devices = np.zeros((capacity, m, width), dtype=np.float32)
        self.servers = np.zeros((capacity, spec.n_edge * SERVER_FEATURES), dtype=np.float32)
        self.targets = np.zeros((capacity, m, spec.n_bits), dtype=np.float32)
        self.mask = np.zeros((capacity, m), dtype=np.float32)
        self.cost = np.zeros(capacity)
        self.serial = np.full(capacity, -1, dtype=np.int64)  # insertion number of each entry
        self.count = 0  # entries ever added

    def __len__(self) -> int:
        return min(self.count, self.capacity)

    @property
    def full(self) -> bool:
        return self.count >= self.capacity

    def add(self, batch: EncodedBatch, hosts: np.ndarray, costs: np.ndarray, n_bits: int) -> None:
        """Store each instance of ``batch`` with its label placement ``hosts`` (batch, M) and its Q."""
        for i in range(batch.devices.shape[0]):
            slot = self.count % self.capacity  # the oldest entry once full
            self.devices[slot] = batch.devices[i]
            self.servers[slot] = batch.servers[i]
            self.targets[slot] = 1.0 - hosts_to_bits(hosts[i], n_bits)  # eq. 19 inverted: output > 1/2 means bit 0
            self.mask[slot] = batch.twin_mask[i]
            self.cost[slot] = costs[i]
            self.serial[slot] = self.count
            self.count += 1

    def sample(self, rng: np.random.Generator, k: int, size: int) -> np.ndarray:
        """(k, size) indices: an independent random batch for each DNN."""
        return rng.integers(0, len(self), size=(k, size))


# --- training (Algorithm 1) ---------------------------------------------------------------------------


def convergence_rate(old_costs: np.ndarray, new_costs: np.ndarray) -> float:
    """Eq. 21: ``mean_i min(C_old_i, C_new_i) / max(C_old_i, C_new_i)``, in (0, 1]; 1 when nothing changed."""
    old, new = np.asarray(old_costs, dtype=np.float64), np.asarray(new_costs, dtype=np.float64)
    if old.shape != new.shape or old.size == 0:
        raise PlacementError(f"need two equal non-empty cost vectors, got shapes {old.shape} and {new.shape}")
    hi = np.maximum(old, new)
    ratio = np.where(hi > 0, np.minimum(old, new) / np.where(hi > 0, hi, 1.0), 1.0)
    return float(ratio.mean())


@dataclass
class TrainingLog:
    """What happened during training, one entry per evaluation (every ``eval_every`` iterations)."""

    iteration: list[int] = field(default_factory=list)
    convergence: list[float] = field(default_factory=list)  # eq. 21 against the previous evaluation
    mean_cost: list[float] = field(default_factory=list)  # mean Q of the decisions on the test set
    gap: list[float] = field(default_factory=list)  # mean cost / optimal mean cost - 1 (when the optimum is given)
    loss: list[float] = field(default_factory=list)  # mean eq. 20 loss since the previous evaluation
    seconds: float = 0.0


def _bce(outputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 20 per DNN, averaged over its batch; absent twins do not count. Returns (K,)."""
    per = nn.functional.binary_cross_entropy_with_logits(outputs, targets, reduction="none").sum(-1)
    return (per * mask).sum((-1, -2)) / mask.sum((-1, -2)).clamp_min(1.0)


class DDLTrainer:
    """Algorithm 1 on a seeded instance generator.

    Args:
        setup: system, scenario and alpha.
        config: DDL hyper-parameters.
        seed: seeds the instance stream, the network initialisation and the batch sampling.
        servers_seed: seeds the environment's servers (default: ``seed``), so that models trained with
            different seeds can share the test environment.
    """

    def __init__(self, setup: PlacementSetup, config: DDLConfig, seed: int = 0, servers_seed: int | None = None) -> None:
        self.setup = setup
        self.config = config
        self.spec = InputSpec.for_setup(setup.scenario, setup.system)
        torch.manual_seed(seed)
        self.model = DDLModel(self.spec, config)
        env = InstanceGenerator(setup.scenario, setup.system, seed if servers_seed is None else servers_seed)
        self.generator = InstanceGenerator(setup.scenario, setup.system, seed + 7919,
                                           vary_servers=config.vary_servers, servers=env.servers)
        self.rng = np.random.default_rng([seed, 2])
        self.memory = ReplayMemory(config.memory_size, self.spec)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate, foreach=True)
        self.iteration = 0
        self.log = TrainingLog()
        self._losses: list[float] = []

    @property
    def servers(self):
        return self.generator.servers

    def step(self) -> None:
        """One outer iteration of Algorithm 1: generate, decide with K DNNs, label, store, train when full."""
        instance = self.generator()
        table = twin_cost_table(instance, self.setup.system, self.setup.alpha)
        batch = encode([instance], self.spec)
        self.model.eval()
        hosts, costs = select_best(candidate_hosts(self.model, batch), [table], crossover=self.config.crossover_labels)
        was_full = self.memory.full
        self.memory.add(batch, hosts, costs, self.spec.n_bits)
        self.iteration += 1
        if was_full and self.iteration % self.config.train_interval == 0:
            self._train_batches()

    def _train_batches(self) -> None:
        self.model.train()
        idx = self.memory.sample(self.rng, self.config.k, self.config.batch_size)
        devices = torch.from_numpy(self.memory.devices[idx])  # (K, U, M, n_max*4)
        servers = torch.from_numpy(self.memory.servers[idx])
        targets = torch.from_numpy(self.memory.targets[idx])
        mask = torch.from_numpy(self.memory.mask[idx])
        loss = _bce(self.model.logits(devices, servers), targets, mask)  # logits (K, U, M, B)
        self.optimizer.zero_grad()
        loss.sum().backward()
        self.optimizer.step()
        self._losses.append(float(loss.detach().mean()))

    def evaluate(self, test: Sequence[Instance], tables: Sequence[np.ndarray]) -> np.ndarray:
        """(len(test),) Q of the model's decisions (best of K) on a test set."""
        self.model.eval()
        _, costs = select_best(candidate_hosts(self.model, encode(test, self.spec)), tables,
                               crossover=self.config.crossover_decisions)
        return costs

    def train(self, iterations: int | None = None, *, test: Sequence[Instance] = (),
              test_tables: Sequence[np.ndarray] = (), optimal_mean: float | None = None, eval_every: int = 100,
              callback: Callable[[DDLTrainer], None] | None = None) -> TrainingLog:
        """Run ``iterations`` (default ``config.iterations``) steps; evaluate eq. 21 on ``test`` every ``eval_every``."""
        iterations = self.config.iterations if iterations is None else iterations
        start = time.perf_counter()
        previous = self.evaluate(test, test_tables) if len(test) else None
        for _ in range(iterations):
            self.step()
            if previous is not None and self.iteration % eval_every == 0:
                current = self.evaluate(test, test_tables)
                self.log.iteration.append(self.iteration)
                self.log.convergence.append(convergence_rate(previous, current))
                self.log.mean_cost.append(float(current.mean()))
                if optimal_mean:
                    self.log.gap.append(float(current.mean() / optimal_mean - 1.0))
                self.log.loss.append(float(np.mean(self._losses)) if self._losses else float("nan"))
                self._losses.clear()
                previous = current
                if callback:
                    callback(self)
        self.log.seconds += time.perf_counter() - start
        return self.log


# --- checkpoints --------------------------------------------------------------------------------------

CHECKPOINT_FORMAT = 1


def save_checkpoint(path: str | Path, model: DDLModel, setup: PlacementSetup, *, half: bool = True,
                    extra: dict | None = None) -> Path:
    """Write the model (weights in float16 when ``half``, to keep it small), its spec, config and set-up."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    torch.save({
        "format": CHECKPOINT_FORMAT,
        "spec": asdict(model.spec),
        "config": asdict(model.config),
        "system": asdict(setup.system),
        "scenario": asdict(setup.scenario),
        "alpha": setup.alpha,
        "state_dict": state,
        "extra": extra or {},
    }, path)
    return path


def _tuples(d: dict) -> dict:
    return {k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v for k, v in d.items()}


def load_checkpoint(path: str | Path) -> tuple[DDLModel, PlacementSetup, dict]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(model in eval mode, set-up, extra)``."""
    path = Path(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no DDL checkpoint at {path}") from None
    except Exception as err:  # torch raises many kinds for a bad file
        raise CheckpointError(f"could not read the DDL checkpoint at {path}: {err}") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a placement DDL checkpoint of format {CHECKPOINT_FORMAT}")
    spec = InputSpec(**_tuples(data["spec"]))
    config = DDLConfig(**_tuples(data["config"]))
    setup = PlacementSetup(SystemConfig(**_tuples(data["system"])), ScenarioConfig(**_tuples(data["scenario"])),
                           float(data["alpha"]))
    model = DDLModel(spec, config)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in data["state_dict"].items()})
    return model.eval(), setup, data.get("extra", {})
