"""Test beds: real peers, built and started here for the test tiers and benchmarks.

Test-only: nothing here ships in the package (``setup.cfg`` installs only
``provisioner`` and ``heketi_client``). Each bed is a package with start/stop context
managers and a small ``up``/``down`` CLI (``python -m testbeds.<bed>``); they share
``testbeds.harness`` for processes and for running our controller as a process.
"""
