"""ringstack identity: a Keystone v3 subset (tokens, projects, users, roles, catalog, EC2
credentials) served by `ringstack-server identity CONF`; `ringstack-identity` administers it."""
