"""Compile the shipped relation model's forward pass once, into torch's compiler cache.

A ``relation_learner`` node compiles its forward pass in the background when it starts (``compile_model``) and
predicts eagerly until then: about a minute on a 2-core machine whose cache is empty, a few seconds from the cache.
``make setup`` runs this once, so that the first node started on the machine is compiled within seconds too. The
cache is torch's (``TORCHINDUCTOR_CACHE_DIR``; ``env.sh`` and the image's entrypoint set it, when it is not set, to
``~/.cache/mobility_twin/torchinductor`` (under ``$XDG_CACHE_HOME`` when that is set), since torch's own default
under the system's temporary folder is emptied by a reboot, after which every node would compile again). Compiled
as the node compiles: one torch thread, with and without road nodes (a twin with and without a road network)::

    python -m mobility_twin_models.relations.precompile [--checkpoint PATH]

Exits 0 when every variant compiled, 1 otherwise (the node then stays eager: right, only slower).
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import replace
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from mobility_twin_models.relations.learner import DEFAULT_CHECKPOINT

    parser = argparse.ArgumentParser(prog="python -m mobility_twin_models.relations.precompile",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT,
                        help="the relation model to compile (default: the shipped relations_gnn.pt)")
    args = parser.parse_args(argv)

    import torch

    from mobility_twin_models.relations import RelationLearner
    from mobility_twin_models.relations.graph import random_graph

    torch.set_num_threads(1)  # as the node: its kernels are generated for one thread
    learner = RelationLearner.load(args.checkpoint)
    failed = 0
    for roads in (True, False) if learner.graph_config.roads else (False,):
        what = "with road nodes" if roads else "without road nodes"
        print(f"compiling the relation model's forward pass {what} (about a minute when not cached) ...",
              flush=True)
        started = time.monotonic()
        error = copy.deepcopy(learner.model).compile_predict(random_graph(replace(learner.graph_config,
                                                                                  roads=roads)))
        if error is None:
            print(f"  compiled in {time.monotonic() - started:.0f} s", flush=True)
        else:
            failed += 1
            print(f"  not compiled ({error}): the node will predict eagerly", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
