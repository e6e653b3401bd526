"""gluster-block volumes through Heketi, written as iSCSI PVs (``gluster.org/glusterblock``).

The retired external provisioner of that name served the same StorageClasses; its
parameters are accepted here (``parameters``), its PV annotations are written and
read (``objects``), so its PVs can be deleted by us. Provision and delete live in
``provisioner``, the sweep of abandoned creates in ``orphans``.
"""
