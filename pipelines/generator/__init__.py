"""The election generator core shared by :mod:`pipelines.generator.sample` and :mod:`pipelines.generator.synth`."""
