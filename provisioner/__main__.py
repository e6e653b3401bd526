"""Allows ``python -m provisioner`` as well as the ``heketi-provisioner`` script."""

from provisioner.cli import main

raise SystemExit(main())
