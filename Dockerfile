# heketi-provisioner container image.
#
#   docker build -t heketi-provisioner:0.1.0 .
#
# The base image is pinned by tag. Pin it by digest as well when you build
# (python:3.11-slim@sha256:...): the digest could not be resolved where this file was
# written (no registry access), so none is recorded here.
#
# BASE_IMAGE replaces it where python:3.11-slim cannot be pulled: any image with
# `python` (>= 3.11) and `pip` on PATH that installs into the image will do. The node
# test bed builds such a base from Debian's packages (testbeds/node/images.py):
#
#   buildah bud --pull=never --build-arg BASE_IMAGE=localhost/hpnode-python-base:<tag> .
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

LABEL org.opencontainers.image.title="heketi-provisioner" \
      org.opencontainers.image.description="Kubernetes dynamic provisioner for GlusterFS through Heketi" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src

# Exactly what setup.cfg needs to build the package: its metadata (README.md is the
# long description) and the two packages it ships. Tests, benchmarks, manifests and
# docs stay out of the image.
COPY pyproject.toml setup.cfg README.md ./
COPY heketi_client/ heketi_client/
COPY provisioner/ provisioner/

# The same package the tests install, without the test extras.
RUN pip install --no-cache-dir . \
    && rm -rf /src/build /src/*.egg-info

WORKDIR /

# Numeric, so that Kubernetes can verify runAsNonRoot without a passwd lookup.
USER 65532:65532

# /metrics, /healthz and /readyz (--metrics-address 0.0.0.0:8080 in the manifests).
EXPOSE 8080

ENTRYPOINT ["heketi-provisioner", "run"]
