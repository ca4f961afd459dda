#!/usr/bin/env bash
# Build and tag every image of the Docker way:
#   wine-pipeline/base, wine-pipeline/core-deps   shared layers (not started by anything)
#   wine-pipeline/dask                            the `scheduler` and `worker` services
#   wine-pipeline/<step>                          one per step the orchestrator starts
#                                                 (the Dask clients from images/step, with
#                                                 STEP and EXTRAS as build arguments)
#   wine-pipeline/orchestrator                    the luigi DAG, and luigid
#   wine-pipeline/object-store                    the S3 API of the `object-store` profile
#                                                 (SeaweedFS; python:3.11-slim, not base)
# all tagged VERSION (default 0.1, what docker-compose.yml uses unless WINE_VERSION
# says otherwise).  Stops at the first failing build.  Nothing is pulled but the
# python:3.11-slim base.
#
# Usage: ./build-task-images.sh [VERSION]
# Env:   DOCKER_BUILD_ARGS  extra arguments for every `docker build` (e.g. --no-cache)
set -euo pipefail

VERSION=${1:-${WINE_VERSION:-0.1}}
if ! [[ $VERSION =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; then
  echo "invalid image tag: $VERSION" >&2
  exit 2
fi
cd "$(dirname "$0")"

# Order matters: each image is built on the ones before it (object-store on none).
IMAGES=(base core-deps dask download make-dataset train evaluate predict orchestrator
        object-store)

# The steps built from images/step/Dockerfile, with the pyproject extras each needs.
declare -A STEP_EXTRAS=([make-dataset]="" [train]="" [evaluate]="report" [predict]="sheet")

read -r -a extra <<<"${DOCKER_BUILD_ARGS:-}"
built=()
start=$(date +%s)
for name in "${IMAGES[@]}"; do
  tag="wine-pipeline/${name}:${VERSION}"
  echo "==> building ${tag}" >&2
  t0=$(date +%s)
  if [[ -v "STEP_EXTRAS[$name]" ]]; then
    file=images/step/Dockerfile
    step_args=(--build-arg "STEP=${name}" --build-arg "EXTRAS=${STEP_EXTRAS[$name]}")
  else
    file="images/${name}/Dockerfile"
    step_args=()
  fi
  docker build \
    --file "$file" \
    --build-arg "VERSION=${VERSION}" \
    "${step_args[@]}" \
    --tag "$tag" \
    "${extra[@]}" \
    . >&2
  built+=("$tag	$(( $(date +%s) - t0 ))s")
done

echo "built in $(( $(date +%s) - start ))s:"
for line in "${built[@]}"; do
  tag=${line%%	*}
  printf '  %-40s %8s  %s\n' "$tag" "${line##*	}" \
    "$(docker image inspect --format '{{.Id}}' "$tag" | cut -c8-19)"
done
