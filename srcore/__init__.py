"""srcore: the reusable part of a companion to five papers on knowledge distillation for super-resolution.

Where things are (lower layers never import higher ones):

* the science, one module per concern: ``resize`` (MATLAB's bicubic), ``data`` (images, sets, the training
  patches), ``metrics`` (PSNR/SSIM under the standard protocol), ``nets``, ``losses``, ``train`` (one training
  loop; ``distributed`` for torchrun), ``evaluate`` (SR of whole images and scores), ``perceptual`` (NIQE, PI,
  LPIPS, FID through pyiqa), ``stats`` (seed noise), ``subjective`` (DMOS), ``report`` (values and results
  pages), ``folders`` (folders a run writes: locked, replaced whole);
* ``pretrained/``: weight files in ``$SRCORE_WEIGHTS``, the official releases, checkpoints in public layouts;
* ``paper/``: one paper's run: its parameters (``config`` and ``profiles/``), its data (``inputs``), its trained
  runs (``runs``), and what a notebook does around its method (``experiment``);
* ``runner/``: running many: one notebook headless (``execute``), several at once (``shards``), their run
  folders merged into one (``merge``, also ``python -m srcore.runner.merge``), results/ changed only on purpose
  (``promote``);
* the commands, ``python -m srcore.<name>``: ``reproduce``, ``download``, ``evaluate``, ``upscale``, ``report``,
  ``bundle``.
"""
__version__ = "0.1.0"
