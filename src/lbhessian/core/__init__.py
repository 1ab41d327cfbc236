"""The foundation every other layer builds on: config, files, errors, runtime, data, models, checkpoints."""
