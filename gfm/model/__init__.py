"""The GFM network (Sect. 3): backbones, glance/focus decoders, RoSTa, checkpoints, complexity."""
