"""The proxy: OpenStack Swift's API v1 for clients, served by fanning out to storage nodes.

It finds nodes with the rings, talks to the storage servers over HTTP only (`backend`; it
never imports `storage_node`, nor does `storage_node` import it), and answers with Swift's
statuses and headers.

Public API:
- `proxy.server`: `SECTION`, `DEFAULT_PORT` and `app_factory(conf) -> WSGI app`, run by
  `ringstack-server proxy`; the app is wrapped in the middlewares the `pipeline` option names;
- `proxy.pipeline.register_filter(name, module)`: make a middleware module nameable in a
  pipeline (each exposes `filter_factory(conf) -> (app -> app)`);
- `proxy.info.register_swift_info(section, ...)`: advertise a section in `/info`.

Inside: request handling per path kind (`controllers`), quorum and handoff rules (`quorum`,
`backend`, `error_limiter`), what it knows of the cluster (`cluster`, `settings`), auth
(`auth`, `acl`), its core middlewares (`catch_errors`, `gatekeeper`, `healthcheck`,
`proxy_logging`) and the Swift API middlewares in `proxy.middleware`.
"""
