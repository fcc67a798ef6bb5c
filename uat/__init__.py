"""User acceptance tests: scenarios through the MCP surface with two independent clients."""
