"""The MCP gateway: transport, client auth, normalisation, routing, response composition."""
