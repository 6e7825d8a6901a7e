"""Stage 1 of image creation: the QEMU wrapper container's entrypoint (`syringe launch`), PID 1 of a wrapper
pod. Not a runtime: it runs inside the pod that a runtime created."""
