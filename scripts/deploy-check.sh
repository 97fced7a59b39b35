#!/usr/bin/env bash
# `make deploy-check`: lint and validate everything under deploy/, offline.
#   hadolint (Dockerfile), check-jsonschema (Compose specification schema),
#   kubectl kustomize + kubernetes-validate (both overlays, pinned Kubernetes version),
#   caddy validate (the proxy's Caddyfile), promtool (alert rules and their unit tests,
#   the Prometheus configuration).
# The Python tools come from deploy/requirements.txt in .venv; kubectl and promtool are
# system packages (.ci/run installs promtool from Debian's prometheus package).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
KUBERNETES_VERSION=${KUBERNETES_VERSION:-1.34.0}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "deploy-check: $1 is missing ($2)" >&2; exit 2; }
}
need kubectl "kubectl kustomize renders the overlays"
need promtool "apt-get install prometheus"

echo "-- hadolint deploy/Dockerfile"
"$BIN/hadolint" deploy/Dockerfile

echo "-- check-jsonschema (Compose specification) deploy/compose.yaml"
"$BIN/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml

for overlay in deploy/kubernetes/overlays/*/; do
  name=$(basename "$overlay")
  echo "-- kustomize $overlay + kubernetes-validate (Kubernetes $KUBERNETES_VERSION, strict)"
  kubectl kustomize "$overlay" > "$OUT/$name.yaml"
  "$BIN/kubernetes-validate" --strict --quiet --kubernetes-version "$KUBERNETES_VERSION" \
    "$OUT/$name.yaml"
done

echo "-- caddy validate deploy/caddy/Caddyfile"
# Caddy keeps its state under XDG_DATA_HOME/XDG_CONFIG_HOME: a throwaway directory here.
XDG_DATA_HOME="$OUT" XDG_CONFIG_HOME="$OUT" DEPLOY_PUBLIC_HOST=assay.example.org \
  "$BIN/caddy" validate --adapter caddyfile --config deploy/caddy/Caddyfile 2>"$OUT/caddy.log" \
  || { cat "$OUT/caddy.log" >&2; exit 1; }

echo "-- promtool check rules, test rules, check config"
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts.test.yml
promtool check config --syntax-only deploy/prometheus/prometheus.yml
echo "deploy-check: all passed"
