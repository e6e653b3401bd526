"""Loopback test bed: a Heketi simulator and a Kubernetes API sandbox.

Both are real HTTP servers; the controller reaches them exactly as it reaches a real
cluster, which is what makes end-to-end tests against them meaningful.
"""
