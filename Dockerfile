# syntax=docker/dockerfile:1
#
# Ultra-thin RunPod serverless image for the Higgs Audio v2 worker.
#
# Only what bootstrap.sh needs to start is inside: a slim Python 3.11, bash and the
# project code (about 130 MB uncompressed, ~50 MB to pull). torch, torchaudio,
# transformers and the rest of requirements-runtime.txt are NOT baked in:
# bootstrap.sh installs them once into a virtual environment on the network volume
# (/runpod-volume/higgs-worker/venvs/<key>) and every later worker reuses it. No
# model weights and no secrets are in the image; configuration comes from the
# endpoint's environment (see docs/runpod-serverless-guide.md).
#
# The one Dockerfile of the project, at the repository root so that RunPod Hub (which
# builds ./Dockerfile or .runpod/Dockerfile) and .github/workflows/build-runpod-container.yml
# build the same image. Pushed by that workflow; never built by deploy-runpod.sh.

FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="higgs-runpod-worker" \
      org.opencontainers.image.description="RunPod serverless worker for Boson AI Higgs Audio v2 TTS (thin image; runtime installed on the network volume)"

# PYTHONDONTWRITEBYTECODE keeps the read-only code folder clean when a non-root
# user runs the image; the code is byte-compiled at build time instead.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    BOOTSTRAP_VOLUME_DIR=/runpod-volume \
    BOOTSTRAP_LOCAL_DIR=/tmp/higgs-worker/venvs

# A C/C++ compiler where the decode step is compiled (DECODE_COMPILE, on with CUDA): triton
# builds its CUDA driver stub with `cc` and the libc headers on first use, inductor's CPU
# kernels need `g++` (which brings libc6-dev). Without them the worker still serves, every
# decode step uncompiled. Cost, from Debian bookworm's Installed-Size of what these add to
# this base image: about 250 MiB (gcc-12 67, g++-12 35, cpp-12 33, libstdc++-12-dev 19,
# binutils 28, libgcc-12-dev 14, libc6-dev 12, sanitizer runtimes 21, linux-libc-dev 7).
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc=4:12.2.0-3 g++=4:12.2.0-3 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Code owned by root and read-only for everyone else: the image works as root (the
# RunPod default) and under any non-root uid, which only needs a writable
# /runpod-volume or /tmp.
COPY requirements-runtime.txt handler.py bootstrap.sh ./
COPY higgs_worker/ ./higgs_worker/
RUN python -m compileall -q /app/higgs_worker /app/handler.py \
    && chmod -R u=rwX,go=rX /app \
    && chmod 0755 /app/bootstrap.sh

ENTRYPOINT ["/app/bootstrap.sh"]
CMD []
