"""The local runtime: live lessons as unprivileged QEMU VMs on this machine."""
