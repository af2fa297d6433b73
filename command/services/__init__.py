"""Services: the I/O edge around the pure domain core."""
