"""The demo's VAPID key pair for web push: made once, kept beside the database.

A real site generates its pair once (``vapid --gen``) and takes the private
key from its secrets; the demo makes one on first run so that push works
without a step. Without py-vapid (the ``webpush`` extra) there is no pair and
the demo runs without push.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path


def ensure(folder: Path) -> dict[str, str]:
    """The ``EXAMPLE_VAPID_*`` variables of the pair kept in ``folder/vapid.json``
    (made now if missing); empty without py-vapid."""
    try:
        from cryptography.hazmat.primitives import serialization
        from py_vapid import Vapid02
    except ImportError:
        return {}
    path = folder / "vapid.json"
    if not path.exists():
        vapid = Vapid02()
        vapid.generate_keys()
        raw = vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        keys = {
            "private": vapid.private_pem().decode(),
            "public": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
        }
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(keys))
        path.chmod(0o600)
    keys = json.loads(path.read_text())
    return {
        "EXAMPLE_VAPID_PRIVATE_KEY": keys["private"],
        "EXAMPLE_VAPID_PUBLIC_KEY": keys["public"],
    }
