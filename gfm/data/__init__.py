"""Stage 1 (Sect. 5.1 AM-2k / PM-10k, Sect. 4.1 BG-20k, MS COCO for the COMP-COCO track of Sect. 5.1,
the released checkpoints), in the order the stage runs:

registry      what can be downloaded (:data:`~gfm.data.registry.REGISTRY`), the lock file of sha256s
fetch         HTTP and Google Drive downloads: resumed, retried, bounded in time, checked before they land
content       what a downloaded file is by its magic number (an HTML page is not an archive)
archive       safe and complete unpacking of zip / tar archives
validate      image / alpha pair validation of a matting split
materialise   the stage entry (:func:`~gfm.data.materialise.run_download`): embedded or real sources
              into the datasets folder
plots         the stage's table and figures
errors        the errors of the stage
world/        the embedded synthetic world
"""
