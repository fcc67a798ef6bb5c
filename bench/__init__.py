"""Side-by-side benchmark, soak test and gateway profile (``make bench``; see ``python -m bench -h``)."""
