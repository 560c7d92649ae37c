"""Stage 1 (Sect. 5): dataset registry, safe downloads and archives, validation, and the embedded world."""
