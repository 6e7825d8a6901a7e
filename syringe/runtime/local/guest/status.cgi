#!/bin/sh
# GET /cgi-bin/status: this endpoint's name, uptime and interfaces, as JSON.
printf 'Content-Type: application/json\r\n\r\n'
printf '{"hostname": "%s", "uptime": %s, "interfaces": [' "$(hostname)" "$(cut -d' ' -f1 /proc/uptime)"
first=1
for path in /sys/class/net/*; do
  name=${path##*/}
  [ $first = 1 ] || printf ', '
  first=0
  printf '{"name": "%s", "addresses": [%s]}' "$name" \
    "$(ip -4 -o addr show dev "$name" | awk '{printf "%s\"%s\"", (NR>1?", ":""), $4}')"
done
printf ']}\n'
