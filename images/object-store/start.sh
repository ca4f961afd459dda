#!/bin/sh
# Start SeaweedFS's all-in-one server with only what the S3 API needs: the master,
# volume and filer it stores through (internal, never published), the S3 gateway on
# :8333 and the bucket WINE_S3_BUCKET.  No WebDAV, no Iceberg or Lance catalog, no admin
# UI, no telemetry.  Extra arguments are passed on to `weed mini`.
# Only :8333 checks the keys.  The master (9333), volume (9340), filer (8888), their
# gRPC ports and the admin server (23646; `weed mini` has no switch for it) listen on
# the container's interfaces too, since -ip.bind applies to all of them: they are never
# published, but every container on the Compose network can reach them, so that network
# must hold only the project's containers.  (-whiteList=127.0.0.1 would close the
# filer to writes from elsewhere, but it stalls the S3 gateway's own uploads in 4.48.)
set -eu
if [ -z "${AWS_ACCESS_KEY_ID:-}" ] || [ -z "${AWS_SECRET_ACCESS_KEY:-}" ]; then
  echo "wine-object-store: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY;" \
       "without them the S3 API would take any request" >&2
  exit 64
fi
exec weed mini \
  -dir=/data \
  -bucket="${WINE_S3_BUCKET:-wine}" \
  -ip=127.0.0.1 -ip.bind=0.0.0.0 \
  -s3.port=8333 \
  -s3.port.iceberg=0 -s3.port.lance=0 \
  -webdav=false \
  -admin.ui=false \
  -master.telemetry=false \
  "$@"
