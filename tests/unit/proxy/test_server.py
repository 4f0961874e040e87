"""The application and its pipeline: /info, healthcheck, request-line errors, middleware
registry, gatekeeper, transaction ids, config loading."""

from __future__ import annotations

import json
import logging
import sys
import types

import pytest

from common.config import Config, ConfigError
from common.constraints import Constraints
from common.policies import parse_policies
from proxy import info as swift_info
from proxy.pipeline import build_pipeline, parse_pipeline, register_filter
from proxy.server import DEFAULT_PORT, SECTION, app_factory
from tests.unit.proxy.fakes import call


def test_module_contract():
    assert (SECTION, DEFAULT_PORT) == ("proxy-server", 8080)


def test_info(cluster, app):
    swift_info.register_swift_info("example_middleware", max_things=7)
    try:
        response = call(app, "/info")
        assert response.status_int == 200
        assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
        info = json.loads(response.body)
    finally:
        swift_info.unregister_swift_info("example_middleware")
    swift = info["swift"]
    assert swift["version"]
    for name, value in Constraints().as_info().items():
        assert swift[name] == value
    assert swift["policies"] == [{"name": "gold", "aliases": "gold", "default": True},
                                 {"name": "silver", "aliases": "silver"}]
    assert "tempauth" in info
    assert info["example_middleware"] == {"max_things": 7}
    assert call(app, "/info", "HEAD").status_int == 200
    assert call(app, "/info", "POST").status_int == 405


def test_info_disallowed_sections(cluster):
    app = app_factory(cluster.conf(disallowed_sections="tempauth, swift.max_file_size"))
    info = json.loads(call(app, "/info").body)
    assert "tempauth" not in info and "max_file_size" not in info["swift"]
    hidden = app_factory(cluster.conf(expose_info="false"))
    assert call(hidden, "/info").status_int == 403


def test_healthcheck(cluster, tmp_path):
    app = app_factory(cluster.conf(disable_path=str(tmp_path / "disabled")))
    response = call(app, "/healthcheck")
    assert (response.status_int, response.body) == (200, b"OK")
    (tmp_path / "disabled").write_text("")
    response = call(app, "/healthcheck")
    assert (response.status_int, response.body) == (503, b"DISABLED BY FILE")


@pytest.mark.parametrize(("path", "status", "body"), [
    ("/v1/AUTH_test/c/%FF", 412, b"Invalid UTF8 or contains NULL"),
    ("/v1/AUTH_test/c%00", 412, b"Invalid UTF8 or contains NULL"),
    ("/v2/AUTH_test", 400, None),
    ("/foo", 412, b"Bad URL"),
    ("/v1/AUTH_test//o", 412, b"Bad URL"),
    ("/", 404, None),
])
def test_bad_paths(app, auth, path, status, body):
    response = call(app, path, headers=auth)
    assert response.status_int == status
    if body is not None:
        assert response.body == body


def test_request_line_errors(app, auth):
    call(app, "/v1/AUTH_test/c", "PUT", headers=auth)
    response = call(app, "/v1/AUTH_test/c", "COPYX", headers=auth)
    assert response.status_int == 405
    assert response.headers["Allow"] == "GET, HEAD, PUT, POST, DELETE"
    bad_length = call(app, "/v1/AUTH_test/c/o", "PUT", headers=auth,
                      environ={"CONTENT_LENGTH": "abc"})
    assert bad_length.status_int == 400
    no_length = call(app, "/v1/AUTH_test/c/o", "PUT", headers=auth)
    assert no_length.status_int == 411


def test_too_large(cluster, auth):
    with open(f"{cluster.swift_dir}/ringstack.conf", "a") as conf:
        conf.write("\n[swift-constraints]\nmax_file_size = 1000\n")
    app = app_factory(cluster.conf())
    call(app, "/v1/AUTH_test/c", "PUT", headers=auth)
    declared = call(app, "/v1/AUTH_test/c/o", "PUT", headers=auth, body=b"x" * 1001)
    assert declared.status_int == 413 and declared.body == b"Your request is too large."
    chunked = call(app, "/v1/AUTH_test/c/o", "PUT", headers=auth, body=b"x" * 5000,
                   chunked=True)
    assert chunked.status_int == 413
    assert not any("/AUTH_test/c/o" in s.store for s in cluster.objects)
    assert json.loads(call(app, "/info").body)["swift"]["max_file_size"] == 1000


def test_object_metadata_limits(app, auth):
    call(app, "/v1/AUTH_test/c", "PUT", headers=auth)
    response = call(app, "/v1/AUTH_test/c/o", "PUT", body=b"x",
                    headers={**auth, "X-Object-Meta-Color": "c" * 257})
    assert response.status_int == 400
    assert response.body == b"Metadata value longer than 256: x-object-meta-Color"
    empty = call(app, "/v1/AUTH_test/c/o", "POST", headers={**auth, "X-Object-Meta-": "v"})
    assert empty.status_int == 400 and empty.body == b"Metadata name cannot be empty"


def test_gatekeeper_and_transaction_ids(cluster, app, auth):
    call(app, "/v1/AUTH_test/c", "PUT", headers=auth)
    call(app, "/v1/AUTH_test/c/o", "PUT", body=b"x",
         headers={**auth, "X-Object-Sysmeta-Secret": "no", "X-Backend-Storage-Policy-Index": "1"})
    stored = [s for s in cluster.objects if "/AUTH_test/c/o" in s.store]
    assert len(stored) == 3                    # policy 0's ring: the client's index was dropped
    sent = stored[0].requests_for("PUT")[-1][2]
    assert "X-Object-Sysmeta-Secret" not in sent
    response = call(app, "/v1/AUTH_test/c/o", headers=auth)
    assert not [h for h in response.headers if h.lower().startswith("x-backend-")]
    assert response.headers["X-Trans-Id"].startswith("tx")
    assert response.headers["X-Openstack-Request-Id"] == response.headers["X-Trans-Id"]
    assert sent["X-Trans-Id"] == sent["X-Openstack-Request-Id"]
    assert call(app, "/v1/AUTH_test").headers["X-Trans-Id"].startswith("tx")   # a 401 too


def test_pipeline_registry(cluster, monkeypatch, caplog):
    calls = []
    module = types.ModuleType("tests_fake_filter")

    def filter_factory(conf):
        swift_info.register_swift_info("fake_filter", seen=conf.get_str("fake_option"))

        def wrap(app):
            def middleware(env, start_response):
                calls.append(env["PATH_INFO"])
                return app(env, start_response)
            return middleware
        return wrap

    module.filter_factory = filter_factory
    monkeypatch.setitem(sys.modules, "tests_fake_filter", module)
    register_filter("fake", "tests_fake_filter")
    register_filter("ghost", "proxy.middleware.ghost_that_does_not_exist")
    with caplog.at_level(logging.WARNING):
        app = app_factory(cluster.conf(pipeline="catch_errors ghost fake healthcheck proxy",
                                       fake_option="yes"))
    assert "skipping ghost" in caplog.text
    assert call(app, "/healthcheck").status_int == 200
    assert calls == ["/healthcheck"]
    assert json.loads(call(app, "/info").body)["fake_filter"] == {"seen": "yes"}
    swift_info.unregister_swift_info("fake_filter")
    with pytest.raises(ConfigError, match="unknown middleware"):
        app_factory(cluster.conf(pipeline="catch_errors typo proxy"))
    with pytest.raises(ConfigError, match="must end with the proxy"):
        parse_pipeline("tempauth healthcheck")


def test_filter_sections_from_the_config_file(cluster, tmp_path):
    path = tmp_path / "proxy-server.conf"
    path.write_text(f"[DEFAULT]\nswift_dir = {cluster.swift_dir}\n\n"
                    "[proxy-server]\npipeline = healthcheck proxy\n\n"
                    f"[filter:healthcheck]\ndisable_path = {tmp_path}\n")
    from common.config import load_section
    app = app_factory(load_section(str(path), "proxy-server"))
    assert call(app, "/healthcheck").status_int == 503     # the directory exists


def test_build_pipeline_order():
    order = []

    def make(name):
        def factory(conf):
            def wrap(app):
                def middleware(env, start_response):
                    order.append(name)
                    return app(env, start_response)
                return middleware
            return wrap
        return factory

    for name in ("one", "two"):
        module = types.ModuleType(f"tests_order_{name}")
        module.filter_factory = make(name)
        sys.modules[module.__name__] = module
        register_filter(name, module.__name__)

    def inner(env, start_response):
        order.append("app")
        start_response("200 OK", [])
        return [b""]

    app, used = build_pipeline(inner, Config({}), ["one", "two"], logging.getLogger("t"))
    call(app, "/")
    assert used == ["one", "two"] and order == ["one", "two", "app"]


def test_policy_rules():
    import configparser

    def parse(text):
        parser = configparser.ConfigParser()
        parser.read_string(text)
        return parse_policies(parser)

    assert parse("").default.name == "Policy-0"
    assert parse("[storage-policy:3]\nname = only\n").default.index == 3
    with pytest.raises(ConfigError):
        parse("[storage-policy:0]\nname = a\n[storage-policy:1]\nname = b\n")
    with pytest.raises(ConfigError):
        parse("[storage-policy:0]\nname = a b\ndefault = yes\n")
    policies = parse("[storage-policy:0]\nname = gold\naliases = yellow\ndefault = yes\n"
                     "[storage-policy:1]\nname = old\ndeprecated = yes\n")
    assert policies.get_by_name("YELLOW").index == 0
    assert [p["name"] for p in policies.as_info()] == ["gold"]


def test_every_option_is_in_the_sample_config():
    import pathlib
    import re
    root = pathlib.Path(__file__).resolve().parents[3]
    sample = (root / "etc" / "proxy-server.conf-sample").read_text()
    documented = set(re.findall(r"^# ?([a-z0-9_]+) =", sample, re.MULTILINE))
    sources = [p for p in (root / "proxy").rglob("*.py") if "middleware" not in p.parts]
    used = set()
    for path in sources:
        used.update(re.findall(r"conf\.get_\w+\(\s*\"([a-z0-9_]+)\"", path.read_text()))
    assert used and used <= documented, sorted(used - documented)


def test_sample_config_builds_a_working_proxy(cluster, tmp_path):
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[3]
    text = (root / "etc" / "proxy-server.conf-sample").read_text()
    text = text.replace("# swift_dir = /etc/ringstack", f"swift_dir = {cluster.swift_dir}")
    path = tmp_path / "proxy-server.conf"
    path.write_text(text)
    from common.config import load_section
    app = app_factory(load_section(str(path), "proxy-server"))
    assert call(app, "/healthcheck").body == b"OK"
    assert "swift" in json.loads(call(app, "/info").body)
