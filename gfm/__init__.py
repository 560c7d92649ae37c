"""gfm-companion: a reproducible companion to *Bridging Composite and Real: Towards End-to-end
Deep Image Matting* (Li, Zhang, Maybank, Tao; IJCV 2022).

One module per concept of the paper: ``world`` (the embedded offline data), ``data`` (stage 1,
download), ``bg20k`` (stage 2), ``rssn`` (stage 3, composition routes), ``model`` / ``losses`` /
``train`` (stage 4), ``metrics`` / ``infer`` / ``evaluate`` (stage 5), ``report`` (stage 6).
"""

__version__ = "0.1.0"
