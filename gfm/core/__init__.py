"""Core helpers every stage shares: atomic file I/O, arrays, parallel map, devices, trimaps, the dataset layout, typed parameters."""
