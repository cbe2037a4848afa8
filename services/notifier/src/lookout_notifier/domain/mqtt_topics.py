"""The MQTT bridge's topics and Home Assistant discovery payloads (no I/O).

Every topic of a tenant lives under ``<prefix>/<tenant id>/`` and its discovery configs use
the tenant id as Home Assistant's node id (``<discovery>/<component>/<tenant id>/...``), so
one broker ACL pattern per subtree keeps each tenant to its own (README: "MQTT").
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    prefix: str
    discovery: str
    tenant: uuid.UUID

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.tenant}"

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def counts(self) -> str:
        return f"{self.base}/counts"

    def stream(self, stream: uuid.UUID, leaf: str) -> str:
        return f"{self.base}/streams/{stream}/{leaf}"

    def sensor_config(self, stream: uuid.UUID) -> str:
        return f"{self.discovery}/sensor/{self.tenant}/lookout_{stream}_status/config"

    def camera_config(self, stream: uuid.UUID) -> str:
        return f"{self.discovery}/camera/{self.tenant}/lookout_{stream}_snapshot/config"

    def image_config(self, stream: uuid.UUID) -> str:
        return f"{self.discovery}/image/{self.tenant}/lookout_{stream}_snapshot_url/config"

    def discovery_configs(self, stream: uuid.UUID, name: str) -> dict[str, str]:
        """Each stream is a device with a status sensor, a camera showing its latest
        snapshot (JPEG bytes on the snapshot topic) and an image entity that fetches it from
        a signed URL (on the snapshot_url topic), for dashboards that load images by URL."""
        device = {
            "identifiers": [f"lookout_{stream}"],
            "name": name,
            "manufacturer": "Lookout",
            "model": "stream",
        }
        common = {"availability_topic": self.availability, "device": device}
        sensor = {
            **common,
            "name": "Status",
            "unique_id": f"lookout_{stream}_status",
            "state_topic": self.stream(stream, "status"),
            "json_attributes_topic": self.stream(stream, "attributes"),
            "icon": "mdi:cctv",
        }
        camera = {
            **common,
            "name": "Snapshot",
            "unique_id": f"lookout_{stream}_snapshot",
            "topic": self.stream(stream, "snapshot"),
        }
        image = {
            **common,
            "name": "Latest snapshot",
            "unique_id": f"lookout_{stream}_snapshot_url",
            "url_topic": self.stream(stream, "snapshot_url"),
        }
        return {
            self.sensor_config(stream): json.dumps(sensor),
            self.camera_config(stream): json.dumps(camera),
            self.image_config(stream): json.dumps(image),
        }
