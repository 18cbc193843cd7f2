"""The newest message of a busy topic, deserialised only when it is used.

The twins publish their tracks up to ~100 times a second; a node that acts once per slot (offloading,
placement, the relation learner) keeps the raw bytes of the newest message (subscribe with ``raw=True``)
and pays the Python deserialisation (tens of ms for hundreds of tracks) once per use, not per message.
"""

from __future__ import annotations

from rclpy.serialization import deserialize_message


class LatestMessage:
    def __init__(self, msg_type) -> None:
        self.msg_type = msg_type
        self._raw: bytes | None = None
        self._msg = None
        self.received = 0

    def set(self, raw: bytes) -> None:
        self._raw, self._msg = raw, None
        self.received += 1

    def get(self):
        """The newest message, or None before the first one."""
        if self._msg is None and self._raw is not None:
            self._msg = deserialize_message(self._raw, self.msg_type)
        return self._msg
