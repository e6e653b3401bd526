"""The GlusterFS backend through Heketi: the only importer of ``heketi_client``.

``GlusterProvisioner`` (``provisioner``) implements the controller's contract;
the rest are its parts: StorageClass parameters, PV/Endpoints/Service builders,
GIDs, intent records, credentials, Heketi failures and clients, the orphan sweep
and the glusterfs version gate. Imports ``provisioner.controller`` (the contract
and the provisioning protocol's keys), ``provisioner.k8s`` and the bottom layer.
"""
