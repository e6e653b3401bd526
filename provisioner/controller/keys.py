"""The annotation and finalizer keys of Kubernetes' dynamic provisioning protocol.

These belong to the protocol between the PV controller, the binder and any external
provisioner, not to one backend: which provisioner a claim waits for, which one made
a PV, which node a WaitForFirstConsumer claim was scheduled to, and the finalizer
that keeps a PV until its backend volume is gone. The keys a backend writes for
itself live with it (``provisioner.gluster.annotations``).
"""

from __future__ import annotations

from typing import Final

# --- Read on claims and classes --------------------------------------------------------
ANN_STORAGE_PROVISIONER: Final = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER: Final = "volume.beta.kubernetes.io/storage-provisioner"
ANN_SELECTED_NODE: Final = "volume.kubernetes.io/selected-node"
ANN_BETA_STORAGE_CLASS: Final = "volume.beta.kubernetes.io/storage-class"
ANN_DEFAULT_CLASS: Final = "storageclass.kubernetes.io/is-default-class"

# --- Written on PVs ------------------------------------------------------------------
ANN_PROVISIONED_BY: Final = "pv.kubernetes.io/provisioned-by"

# --- PV protection (the name the Go external-provisioner library uses) ---------------
FINALIZER: Final = "external-provisioner.volume.kubernetes.io/finalizer"
# Put by the PV controller (1.31+, HonorPVReclaimPolicy) on Delete-policy PVs of
# in-tree plugins, and removed by it once its plugin deleted the volume. Taking over a
# plugin the server no longer has, we are that plugin: we remove it after the delete.
PV_CONTROLLER_FINALIZER: Final = "kubernetes.io/pv-controller"
