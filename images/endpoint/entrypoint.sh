#!/bin/sh
# PID 1 of the example curriculum's container images (utility, api-server, frr): the image's own services
# (/etc/syringe/start, as the tiny VM's flavours have), then OpenSSH in the foreground. The pod gives the
# hostname and the link addresses (static IPAM); the login is the image metafile's, baked in at build.
set -e
ssh-keygen -A >/dev/null
mkdir -p /run/sshd
if [ -x /etc/syringe/start ]; then /etc/syringe/start; fi
exec /usr/sbin/sshd -D -e
