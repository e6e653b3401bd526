"""Kubernetes dynamic provisioner for GlusterFS volumes managed by Heketi."""

__version__ = "0.1.0"
