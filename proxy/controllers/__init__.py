"""Request handlers of the proxy core, one module per kind of path.

- `base`: what every controller shares (authorization with ACLs, account/container info,
  quorum fan-out of writes, response building) and the info helpers middlewares use;
- `getter`: GET/HEAD against storage nodes (primaries then handoffs, newest answer, resuming a
  broken object stream from another replica);
- `account`, `container`, `object`: the Swift API v1 verbs; `putter`: the object PUT fan-out;
- `info`: `/info`.
"""
