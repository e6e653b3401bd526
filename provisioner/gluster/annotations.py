"""Every annotation and label key the Gluster backend reads or writes.

The in-tree ``kubernetes.io/glusterfs`` plugin defined most of these; operators
migrating to us keep their PVs, so the keys and values must stay byte-for-byte the
same. Keys under ``heketi-provisioner.gluster.org/`` are ours: they carry what delete
needs so that a PV can be deleted after its StorageClass or Secret is gone. The keys
of the provisioning protocol itself (provisioned-by, the finalizer, the claim's
storage-provisioner) are the controller's: ``provisioner.controller.keys``.
"""

from __future__ import annotations

from typing import Final

# --- Written on the PV, shared with the in-tree provisioner -------------------------
ANN_GID: Final = "pv.beta.kubernetes.io/gid"
ANN_HEKETI_VOLUME_ID: Final = "gluster.kubernetes.io/heketi-volume-id"
ANN_GLUSTER_TYPE: Final = "gluster.org/type"
ANN_CREATED_BY: Final = "kubernetes.io/createdby"
ANN_DESCRIPTION: Final = "Description"

GLUSTER_TYPE_FILE: Final = "file"
CREATED_BY_VALUE: Final = "heketi-dynamic-provisioner"
DESCRIPTION_VALUE: Final = "Gluster-Internal: Dynamically provisioned PV"

# --- Ours: what delete needs without the StorageClass or the Secret -----------------
ANN_RESTURL: Final = "heketi-provisioner.gluster.org/resturl"
ANN_RESTUSER: Final = "heketi-provisioner.gluster.org/restuser"
ANN_SECRET_NAMESPACE: Final = "heketi-provisioner.gluster.org/secret-namespace"
ANN_SECRET_NAME: Final = "heketi-provisioner.gluster.org/secret-name"
ANN_ENDPOINTS_NAME: Final = "heketi-provisioner.gluster.org/endpoints-name"
# On a clone's PV: the Heketi volume id it was cloned from. A Heketi clone keeps its
# source's GID, so two PVs of a class share one; this says why (``audit``, GIDs).
ANN_CLONE_OF: Final = "heketi-provisioner.gluster.org/clone-of"

# --- Written on Services by versions before the security fix; read by nothing now -----
# The intent record lived on the claim's Service, which its tenant can write; it is now
# a ConfigMap in the controller's own namespace (``provisioner.gluster.intent``). The
# keys stay named so that tests can forge such a Service and prove it is ignored.
ANN_INTENT_CLAIM_UID: Final = "heketi-provisioner.gluster.org/claim-uid"
ANN_INTENT_CLAIM_NAME: Final = "heketi-provisioner.gluster.org/claim-name"
ANN_INTENT_STORAGE_CLASS: Final = "heketi-provisioner.gluster.org/storage-class"
ANN_INTENT_VOLUME_NAME: Final = "heketi-provisioner.gluster.org/volume-name"
ANN_INTENT_GID: Final = "heketi-provisioner.gluster.org/gid"

# --- The endpoints (the Endpoints + Service pair a glusterfs PV mounts through) -------
LABEL_PROVISIONED_FOR_PVC: Final = "gluster.kubernetes.io/provisioned-for-pvc"
