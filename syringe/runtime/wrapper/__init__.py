"""Stage 1 of image creation: the QEMU wrapper container's entrypoint (`syringe launch`)."""
