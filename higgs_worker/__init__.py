"""Higgs Audio v2 text-to-speech as a RunPod serverless worker."""

__version__ = "0.1.0"
