"""The twin model's :class:`~mobility_twin_core.Layout` to and from the ``Layout`` message.

The layout travels latched on ``/infrastructure/layout`` (:data:`mobility_twin.ros.topics.LAYOUT`). A
message that does not make a valid layout (ids that repeat, radii that are not positive, polygons with an
odd number of coordinates...) raises :class:`~mobility_twin_core.LayoutError` naming the entry, which the
receiving node logs and counts.
"""

from __future__ import annotations

import math

from std_msgs.msg import Header

from mobility_twin.ros.convert import to_time
from mobility_twin_core import Cav, Cloud, EdgeServer, Layout, LayoutError, Rsu, Site
from mobility_twin_msgs.msg import CavDescription, EdgeServerDescription, RsuDescription, SiteDescription
from mobility_twin_msgs.msg import Layout as LayoutMsg


def _flat(points) -> list[float]:
    return [float(v) for p in points for v in p]


def _pairs(where: str, flat) -> tuple[tuple[float, float], ...]:
    values = list(flat)
    if len(values) % 2:
        raise LayoutError(f"{where}: {len(values)} numbers do not make (x, y) pairs")
    return tuple((values[i], values[i + 1]) for i in range(0, len(values), 2))


def layout_to_msg(layout: Layout, stamp_s: float = 0.0, frame_id: str = "map") -> LayoutMsg:
    return LayoutMsg(
        header=Header(stamp=to_time(stamp_s), frame_id=frame_id), name=layout.name,
        origin_latitude=float(layout.origin[0]), origin_longitude=float(layout.origin[1]), area=_flat(layout.area),
        rsus=[RsuDescription(rsu_id=r.rsu_id, site_id=r.site_id, x=r.x, y=r.y, z=r.z, yaw=r.yaw, range=r.range_m)
              for r in layout.rsus],
        cavs=[CavDescription(cav_id=c.cav_id, lidar_height=c.lidar_height_m, range=c.range_m) for c in layout.cavs],
        edge_servers=[EdgeServerDescription(server_id=s.server_id, site_id=s.site_id, x=s.x, y=s.y,
                                            coverage_radius=s.coverage_radius_m, cpu_frequency=s.cpu_hz)
                      for s in layout.servers],
        sites=[SiteDescription(site_id=s.site_id, polygon=_flat(s.polygon)) for s in layout.sites],
        cloud_x=layout.cloud.x, cloud_y=layout.cloud.y, cloud_cpu_frequency=layout.cloud.cpu_hz,
    )


def layout_from_msg(msg: LayoutMsg) -> Layout:
    """The validated layout of a message (LayoutError naming the bad entry otherwise)."""
    return Layout(
        rsus=tuple(Rsu(r.rsu_id, r.x, r.y, r.z, r.yaw, r.site_id, r.range) for r in msg.rsus),
        cavs=tuple(Cav(c.cav_id, c.lidar_height, c.range) for c in msg.cavs),
        servers=tuple(EdgeServer(s.server_id, s.x, s.y, s.coverage_radius, s.cpu_frequency, s.site_id)
                      for s in msg.edge_servers),
        sites=tuple(Site(s.site_id, _pairs(f"sites.{s.site_id}.polygon", s.polygon)) for s in msg.sites),
        cloud=Cloud(msg.cloud_x, msg.cloud_y, msg.cloud_cpu_frequency),
        area=_pairs("area", msg.area), origin=(msg.origin_latitude, msg.origin_longitude), name=msg.name,
    ).validated()


def describe(layout: Layout) -> str:
    """One log line: how many of each, and the name."""
    origin = "" if any(math.isnan(v) for v in layout.origin) else f" at {layout.origin[0]:.5f}, {layout.origin[1]:.5f}"
    return (f"layout {layout.name or '(unnamed)'}{origin}: {len(layout.rsus)} RSUs, {len(layout.cavs)} CAVs, "
            f"{len(layout.servers)} edge servers, {len(layout.sites)} sites")
