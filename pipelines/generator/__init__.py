"""The election generator core shared by :mod:`pipelines.sample` and :mod:`pipelines.synth`."""
