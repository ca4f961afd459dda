#!/usr/bin/env bash
# Remove what the pipeline leaves behind on this Docker Engine, found by label
# (wine-pipeline.project=wine-pipeline, which every image and step container carries):
#   - stopped containers (kept step containers, finished compose services, debug ones)
#   - dangling images (old layers of rebuilt images)
# Running containers, tagged images and the data root are left alone.
#
# Usage: ./docker-clean.sh [--debug] [--images]
#   --debug   also remove running debug containers (the Debug task's sleepers)
#   --images  also remove every wine-pipeline/* image (rebuild with build-task-images.sh)
set -euo pipefail

label="wine-pipeline.project=wine-pipeline"
debug=0
images=0
for arg in "$@"; do
  case "$arg" in
    --debug) debug=1 ;;
    --images) images=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown option: $arg (see --help)" >&2; exit 2 ;;
  esac
done

if [ "$debug" = 1 ]; then
  ids=$(docker ps -q --filter "label=$label" --filter "label=wine-pipeline.debug=1")
  if [ -n "$ids" ]; then
    echo "removing debug containers:"
    # shellcheck disable=SC2086 # one id per word
    docker rm -f $ids
  fi
fi

echo "removing stopped containers labelled $label:"
docker container prune --force --filter "label=$label"

if [ "$images" = 1 ]; then
  refs=$(docker images --format '{{.Repository}}:{{.Tag}}' --filter "label=$label" \
    | grep '^wine-pipeline/' || true)
  if [ -n "$refs" ]; then
    echo "removing images:"
    # shellcheck disable=SC2086 # one reference per word
    docker rmi $refs || echo "some images are still used by containers; stop those first" >&2
  fi
fi

echo "removing dangling images labelled $label:"
docker image prune --force --filter "label=$label"
