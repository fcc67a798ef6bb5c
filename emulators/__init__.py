"""Local HTTP servers that speak the providers' real wire formats, with fault injection."""
