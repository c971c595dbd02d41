"""Identity: projects, principals, role bindings, API keys and OIDC bearer tokens."""
