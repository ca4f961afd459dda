#!/usr/bin/env bash
# Make the TLS files of the Dask cluster: a private CA and one certificate/key that the
# scheduler, the workers and the clients (the step containers) share.
#
#   scripts/make-certs.sh DIR [EXTRA_NAME_OR_IP ...]
#
# Writes DIR/ca.pem (the CA certificate), DIR/tls.pem and DIR/tls.key (the shared
# certificate and its key), with subjectAltName scheduler, localhost, 127.0.0.1 and every
# extra host name or IP given (the scheduler's address as other hosts see it, for a
# set-up on more than one machine).  The CA's key is not kept: a new certificate means a
# new CA, so run the script again and copy DIR to every host.  The files are readable
# by the containers' user (WINE_UID:WINE_GID, default 1000:1000): as root the files are
# chowned to it and the key is mode 0640; run by that user, they are its own; run by
# anyone else, the key is made readable by all (with a warning).
# Refuses to replace existing files unless --force comes first.
# Env: WINE_CERT_DAYS  validity in days (default 825).
set -euo pipefail

force=0
if [[ ${1:-} == --force ]]; then
  force=1
  shift
fi
if [[ $# -lt 1 || ${1:-} == -h || ${1:-} == --help ]]; then
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
dir=$1
shift
command -v openssl >/dev/null || { echo "make-certs.sh: openssl is not installed" >&2; exit 1; }
mkdir -p "$dir"
for f in ca.pem tls.pem tls.key; do
  if [[ -e $dir/$f && $force == 0 ]]; then
    echo "make-certs.sh: $dir/$f exists; pass --force first to replace it" >&2
    exit 1
  fi
done

san="DNS:scheduler,DNS:localhost,IP:127.0.0.1"
for extra in "$@"; do
  if [[ $extra =~ ^[0-9]+(\.[0-9]+){3}$ || $extra == *:* ]]; then
    san+=",IP:${extra}"
  elif [[ $extra =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]]; then
    san+=",DNS:${extra}"
  else
    echo "make-certs.sh: not a host name or IP: $extra" >&2
    exit 2
  fi
done
days=${WINE_CERT_DAYS:-825}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 077
openssl req -x509 -newkey rsa:3072 -sha256 -nodes -days "$days" \
  -subj "/CN=wine-pipeline Dask CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey rsa:3072 -sha256 -nodes -subj "/CN=wine-pipeline dask" \
  -keyout "$work/tls.key" -out "$work/tls.csr" 2>/dev/null
printf '%s\n' "basicConstraints=critical,CA:FALSE" \
  "keyUsage=critical,digitalSignature,keyEncipherment" \
  "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=${san}" > "$work/ext.cnf"
openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days "$days" -sha256 -extfile "$work/ext.cnf" -out "$work/tls.pem" 2>/dev/null
openssl verify -CAfile "$work/ca.pem" "$work/tls.pem" >/dev/null

install -m 0644 "$work/ca.pem" "$dir/ca.pem"
install -m 0644 "$work/tls.pem" "$dir/tls.pem"
install -m 0640 "$work/tls.key" "$dir/tls.key"
if [[ $(id -u) == 0 ]]; then
  # The containers run as WINE_UID:WINE_GID (default 1000:1000), not root.
  chown "${WINE_UID:-1000}:${WINE_GID:-1000}" "$dir/ca.pem" "$dir/tls.pem" "$dir/tls.key"
elif [[ $(id -u) != "${WINE_UID:-1000}" ]]; then
  # Not root and not the containers' user: only a key readable by all can reach them.
  chmod 0644 "$dir/tls.key"
  echo "make-certs.sh: $dir/tls.key is readable by every user (uid $(id -u) is not" \
    "WINE_UID ${WINE_UID:-1000}); run as root or as that user to keep it 0640" >&2
fi
chmod 0755 "$dir"
echo "wrote $dir/ca.pem, $dir/tls.pem, $dir/tls.key (subjectAltName ${san//,/, })"
