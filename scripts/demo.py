"""Prints how to reach the demo, after taking its first snapshot through the REST API."""

from __future__ import annotations

import os
import sys
import time

import httpx

API = f"http://127.0.0.1:{os.environ.get('LOOKOUT_API_PORT', '8000')}"
WS = f"ws://127.0.0.1:{os.environ.get('LOOKOUT_NOTIFIER_PORT', '8001')}/ws"
EMAIL = os.environ["LOOKOUT_DEMO_EMAIL"]
PASSWORD = os.environ["LOOKOUT_DEMO_PASSWORD"]


def wait_ready(client: httpx.Client) -> None:
    for _ in range(300):
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    sys.exit("the api did not become ready; see var/dev/logs/api.log")


def main() -> None:
    with httpx.Client(base_url=API, timeout=10) as client:
        wait_ready(client)
        r = client.post("/api/v1/auth/token", data={"username": EMAIL, "password": PASSWORD})
        r.raise_for_status()
        token = r.json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        stream = next(
            s
            for s in client.get("/api/v1/streams", headers=auth).json()["items"]
            if s["name"] == "Demo camera"
        )
        job = client.post(f"/api/v1/streams/{stream['id']}/snapshots", headers=auth).json()
        for _ in range(300):
            state = client.get(f"/api/v1/jobs/{job['job_id']}", headers=auth).json()
            if state["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.2)
        image = f"{API}/api/v1/snapshots/{state['snapshot_id']}/image"
        print(
            f"""
Lookout is running.
  API          {API}/docs
  WebSocket    {WS}?token=<access token>
  Demo login   {EMAIL} / {PASSWORD}
  Demo stream  {stream["id"]} ({stream["url"]})
  Snapshot     job {job["job_id"]}: {state["status"]}
  Image        curl -H "Authorization: Bearer $TOKEN" {image} -o snapshot.jpg
  Token        export TOKEN={token}
""",
            flush=True,
        )


if __name__ == "__main__":
    main()
