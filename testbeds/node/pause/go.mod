// The pod sandbox's process of the node bed's pause image (testbeds/node/images.py).
// No dependencies: the standard library only.
module heketi-provisioner.test/node/pause

go 1.24
