"""Code both the gateway and the workers import: wire protocol, errors, models, config, logging."""
