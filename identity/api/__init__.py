"""Identity's HTTP API (Keystone v3): one module per resource family, each listing its
routes; identity.api.router dispatches to them."""
