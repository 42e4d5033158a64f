from pipeline.cli.app import app  # noqa: F401
