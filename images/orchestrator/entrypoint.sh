#!/bin/sh
# Run the command as the non-root pipeline user.  When started as root (the image's
# default), drop to WINE_UID:WINE_GID (default 1000:1000, user wine) and add the
# group that owns the mounted Docker socket, whatever its number is on this host,
# so the orchestrator can start step containers without running as root.
set -eu
if [ "$(id -u)" != 0 ]; then
  exec "$@"
fi
uid=${WINE_UID:-1000}
gid=${WINE_GID:-1000}
if [ "$uid" = 0 ]; then
  echo "wine-entrypoint: WINE_UID=0 refused; the pipeline runs as a non-root user" >&2
  exit 64
fi
groups=$gid
sock=${WINE_DOCKER_SOCKET:-/var/run/docker.sock}
if [ -S "$sock" ]; then
  sock_gid=$(stat -c %g "$sock")
  [ "$sock_gid" = "$gid" ] || groups="$groups,$sock_gid"
fi
exec setpriv --reuid="$uid" --regid="$gid" --groups="$groups" --inh-caps=-all -- "$@"
