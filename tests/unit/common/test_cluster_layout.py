"""The all-in-one cluster's layout: configs, rings and secrets made once and then kept."""

from __future__ import annotations

import os

from common.cluster import Layout, ensure_cluster
from common.config import load_section
from ring import Ring, load_hash_secrets


def test_first_start_creates_everything_and_later_starts_keep_it(tmp_path):
    layout = ensure_cluster(str(tmp_path), proxy_port=9000, storage_base_port=7000)
    assert [s[0] for s in layout.servers()][:3] == ["object-1", "container-1", "account-1"]
    assert layout.servers()[-1] == ("proxy", "proxy", 9000)
    secrets_before = load_hash_secrets(os.path.join(layout.etc, "ringstack.conf"))
    for kind in ("account", "container", "object"):
        ring = Ring(os.path.join(layout.etc, f"{kind}.ring"), secrets_before)
        assert ring.replica_count == 3 and ring.part_power == 10
        assert sorted(d.port for d in ring.devices if d) == \
            [layout.port(kind, n) for n in range(1, 5)]
        zones = {n.zone for n in ring.get_part_nodes(0)}
        assert len(zones) == 3
    conf = load_section(layout.conf_path("object", 2), "object-server")
    assert conf.get_int("bind_port", 0) == 7010 and conf.get_str("devices").endswith("srv/2")
    proxy = load_section(layout.conf_path("proxy"), "proxy-server")
    assert proxy.get_str("user_test_tester") == "testing .admin"

    again = ensure_cluster(str(tmp_path), proxy_port=9001)
    assert again.proxy_port == 9001 and again.storage_base_port == 7000
    assert load_hash_secrets(os.path.join(layout.etc, "ringstack.conf")) == secrets_before
    assert Layout.load(str(tmp_path)).users == layout.users
