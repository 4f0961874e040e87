"""The storage node: the object, container and account servers and what they stand on.

Each server speaks OpenStack Swift's backend protocol over HTTP (docs/DATA_PATH.md); the
proxy reaches them only that way and never imports this package, and nothing here imports
`proxy` (only `ring` and `common`).

Public API, as `ringstack-server` (common.server_main) uses it:
- `object_server`, `container_server`, `account_server`: each exposes `SECTION`,
  `DEFAULT_PORT` and `app_factory(conf) -> WSGI app`;
- `updater`: the object-updater daemon, `SECTION` and `run_daemon(conf, logger, once)`.

Beneath them, one module per job:
- objects on disk: `diskfile` (file format, durable writes, verified reads) over the pure
  rules of `ondisk`; `durable` (the fsync discipline every write follows);
- containers and accounts: `db` (the sqlite base), `container_db`, `account_db`, `listing`;
- what the servers share: `devices` (device checks, 507 errors, the per-device thread pool
  `DiskIOPool`), `cluster_config` (ringstack.conf), `db_server` (the WSGI base of the
  container and account servers), `object_requests` / `object_responses`, `row_batcher`,
  `account_reporter`;
- updates between servers: `async_pending`, `http_client`, `updater`.
"""
