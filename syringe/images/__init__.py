"""Stage 1 of a lesson image, automated: a base disk prepared for Syringe (`syringe image prepare`) and
wrapped in a QEMU wrapper image (`syringe image wrap`), and the Debian base disk that stands in for an
install image (`syringe image build debian-disk`)."""
