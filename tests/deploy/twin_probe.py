"""A probe process for multi-host tests: what one host sees of the twins, one JSON line per message.

Runs inside a host's network namespace (the test process is outside it) and appends to a file the test
reads while it runs:

    python -m tests.deploy.twin_probe --site site_1 --out probe.jsonl --duration 180

Lines: ``{"t": wall time, "topic": "global_objects" | "local_objects", "n": tracks}``,
``{"t", "topic": "local_state", "stale": {rsu: bool}, "age": {rsu: s}}``,
``{"t", "topic": "global_state", "stale": {entity: bool}}`` and ``{"t", "topic": "sim"}`` for each
ground-truth message (the simulator's host is reachable); with ``--rsus``, every second
``{"t", "topic": "graph", "rsu_publishers": n}``: the RSU detection publishers discovery knows of.
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--site", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--duration", type=float, default=180.0)
    p.add_argument("--rsus", default="", help="comma-separated RSU ids whose detection publishers are counted")
    args = p.parse_args(argv)

    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from mobility_twin.ros import topics
    from mobility_twin.ros.qos import TWIN_STATE
    from mobility_twin_msgs.msg import TrackedObjectArray, TwinEntity, TwinStateArray

    out = open(args.out, "a", buffering=1)  # line-buffered: the test reads it while it is written

    def write(topic: str, **fields) -> None:
        out.write(json.dumps({"t": round(time.time(), 3), "topic": topic, **fields}) + "\n")

    def tracks(topic: str):
        return lambda msg: write(topic, n=len(msg.objects))

    def on_local_state(msg: TwinStateArray) -> None:
        rsus = [e for e in msg.entities if e.kind == TwinEntity.KIND_RSU]
        write("local_state", stale={e.entity_id: e.stale for e in rsus},
              age={e.entity_id: round(e.age_of_information, 2) for e in rsus})

    rclpy.init(args=[])
    node = rclpy.create_node("twin_probe")
    node.create_subscription(TrackedObjectArray, topics.GLOBAL_OBJECTS, tracks("global_objects"), TWIN_STATE)
    node.create_subscription(TrackedObjectArray, topics.local_objects(args.site), tracks("local_objects"), TWIN_STATE)
    node.create_subscription(TwinStateArray, topics.local_state(args.site), on_local_state, TWIN_STATE)
    node.create_subscription(TwinStateArray, topics.GLOBAL_STATE,
                             lambda m: write("global_state", stale={e.entity_id: e.stale for e in m.entities}),
                             TWIN_STATE)
    node.create_subscription(TrackedObjectArray, topics.GROUND_TRUTH, lambda _data: write("sim"), TWIN_STATE,
                             raw=True)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    rsu_topics = [topics.rsu_detections(r) for r in args.rsus.split(",") if r]
    write("probe_started")
    end = time.monotonic() + args.duration
    next_graph = 0.0
    try:
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.1)
            if rsu_topics and time.monotonic() >= next_graph:  # what discovery knows of the RSUs' publishers
                next_graph = time.monotonic() + 1.0
                write("graph", rsu_publishers=sum(node.count_publishers(t) for t in rsu_topics))
    except KeyboardInterrupt:
        pass
    finally:
        out.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
